package controller

import (
	"context"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kvv1 "kvstore.dev/kvstore/api/v1"
)

// TestUserSecretsBypassTheCache: a manager built with CacheOptions (as the
// operator's is) does not hold the user's unlabelled Secrets, only the
// operator's labelled ones; the reconciler still reads the user's through
// the API reader (spec.auth.secretName and spec.auth.tokens[].secretRef),
// sees a change at once, and requeues within Recheck so the change is
// acted on without a watch.
func TestUserSecretsBypassTheCache(t *testing.T) {
	ns := newNamespace(t)
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:  scheme,
		Metrics: metricsserver.Options{BindAddress: "0"},
		Cache:   CacheOptions(ns),
		Client:  ClientOptions(),
	})
	if err != nil {
		t.Fatal(err)
	}
	mctx := startManager(t, ctx, mgr)
	if !mgr.GetCache().WaitForCacheSync(mctx) {
		t.Fatal("cache did not sync")
	}

	secret := func(name string, lbl map[string]string, token string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbl}, Data: map[string][]byte{AuthTokenKey: []byte(token)}}
	}
	for _, s := range []*corev1.Secret{
		secret("my-token", nil, "first"),
		secret("app-token", nil, "app-1"),
		secret("ours", map[string]string{ManagedByLabel: FieldOwner}, "x"),
	} {
		if err := k8s.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	cached := mgr.GetClient()
	eventually(t, "the labelled Secret in the cache", func() error { return cached.Get(ctx, key(ns, "ours"), &corev1.Secret{}) })
	if err := cached.Get(ctx, key(ns, "my-token"), &corev1.Secret{}); !apierrors.IsNotFound(err) {
		t.Errorf("cache Get of an unlabelled Secret: %v, want NotFound", err)
	}
	var list corev1.SecretList
	if err := cached.List(ctx, &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, s := range list.Items {
		if s.Labels[ManagedByLabel] != FieldOwner {
			t.Errorf("cache List has Secret %s with labels %v", s.Name, s.Labels)
		}
	}

	const recheck = 300 * time.Millisecond
	r := &Reconciler{Client: cached, APIReader: mgr.GetAPIReader(), Recorder: &countingRecorder{}, Options: testOpts, Recheck: recheck}
	kv := sample(t, ns)
	kv.Spec.Auth.SecretName = "my-token"
	kv.Spec.Auth.Tokens = []kvv1.TokenSpec{tokenSpec("app", "readonly")}
	kv.Spec.Auth.Tokens[0].SecretRef = kvv1.SecretKeyRef{Name: "app-token", Key: AuthTokenKey}
	create(t, kv)
	n := namesFor(kv)

	observeToken := func(r *Reconciler) (admin, app string) {
		t.Helper()
		obs, err := r.observe(ctx, kv)
		if err != nil {
			t.Fatalf("observe: %v", err)
		}
		if s := obs.secret("app-token"); s != nil {
			app = string(s.Data[AuthTokenKey])
		}
		return obs.adminToken(kv, n), app
	}
	if admin, app := observeToken(&Reconciler{Client: cached, Options: testOpts}); admin != "" || app != "" {
		t.Errorf("without the API reader the cache gave admin %q, app %q; want neither", admin, app)
	}
	if admin, app := observeToken(r); admin != "first" || app != "app-1" {
		t.Errorf("through the API reader: admin %q, app %q; want first, app-1", admin, app)
	}
	for name, v := range map[string]string{"my-token": "second", "app-token": "app-2"} {
		s := &corev1.Secret{}
		if err := get(ns, name, s); err != nil {
			t.Fatal(err)
		}
		s.Data[AuthTokenKey] = []byte(v)
		if err := k8s.Update(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if admin, app := observeToken(r); admin != "second" || app != "app-2" {
		t.Errorf("after the change: admin %q, app %q; want second, app-2", admin, app)
	}

	eventually(t, "the KVStore in the test manager's cache", func() error { return cached.Get(ctx, key(ns, kv.Name), &kvv1.KVStore{}) })
	res, err := r.Reconcile(ctx, reconcile.Request{NamespacedName: key(ns, kv.Name)})
	if err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	if res.RequeueAfter <= 0 || res.RequeueAfter > recheck {
		t.Errorf("RequeueAfter %v, want within Recheck %v (user Secrets are not watched)", res.RequeueAfter, recheck)
	}
}

// startManager runs mgr until the test ends and returns the context it
// runs under (cancelled, and the manager waited for, at cleanup).
func startManager(t *testing.T, ctx context.Context, mgr manager.Manager) context.Context {
	t.Helper()
	mctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := mgr.Start(mctx); err != nil {
			t.Errorf("manager: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return mctx
}
