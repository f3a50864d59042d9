package controller

import (
	"bytes"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kvv1 "kvstore.dev/kvstore/api/v1"
)

// fakeReconciler is a Reconciler on controller-runtime's fake client, which
// tracks managed fields as the API server does for server-side apply; cc
// counts its writes.
func fakeReconciler(t *testing.T, objs ...client.Object) (*Reconciler, *countingClient, *countingRecorder) {
	t.Helper()
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := kvv1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	fc := fake.NewClientBuilder().WithScheme(s).WithReturnManagedFields().WithStatusSubresource(&kvv1.KVStore{}).WithObjects(objs...).Build()
	cc, rec := &countingClient{Client: fc}, &countingRecorder{}
	return &Reconciler{Client: cc, Recorder: rec, Options: testOpts, Rand: bytes.NewReader(make([]byte, 1024))}, cc, rec
}

// TestApplyComparison applies every typed child of a new KVStore, then
// checks the per-kind comparison on what the fake API server holds: an
// unchanged object is not written again, one whose owned field someone else
// changed is.
func TestApplyComparison(t *testing.T) {
	kv := newKV(func(k *kvv1.KVStore) {
		k.Spec.Replicas = ptr(int32(3))
		k.Spec.Ingress = kvv1.IngressSpec{Enabled: true, Host: "kv.example.com"}
	})
	p, err := planFor(kv, observe(kv).obs, testOpts, time.Now(), bytes.NewReader(make([]byte, 64)))
	if err != nil {
		t.Fatal(err)
	}
	r, cc, _ := fakeReconciler(t)
	prototype := map[string]func() client.Object{
		"Secret": func() client.Object { return &corev1.Secret{} }, "ConfigMap": func() client.Object { return &corev1.ConfigMap{} },
		"Service": func() client.Object { return &corev1.Service{} }, "StatefulSet": func() client.Object { return &appsv1.StatefulSet{} },
		"PodDisruptionBudget": func() client.Object { return &policyv1.PodDisruptionBudget{} },
		"Ingress":             func() client.Object { return &networkingv1.Ingress{} },
	}
	live := func(c child) client.Object {
		t.Helper()
		o := prototype[c.key.kind]()
		if err := r.Client.Get(ctx, client.ObjectKey{Namespace: kv.Namespace, Name: c.key.name}, o); err != nil {
			t.Fatal(err)
		}
		return o
	}
	for _, c := range p.children {
		t.Run(c.key.kind+" "+c.key.name, func(t *testing.T) {
			if wrote, err := r.apply(ctx, kv, nil, c); err != nil || !wrote {
				t.Fatalf("create: wrote %v, %v", wrote, err)
			}
			before := cc.writes.Load()
			if wrote, err := r.apply(ctx, kv, live(c), c); err != nil || wrote || cc.writes.Load() != before {
				t.Fatalf("unchanged: wrote %v (%v), %v", wrote, cc.log, err)
			}
			// Someone else takes a label the operator owns.
			o := live(c)
			l := o.GetLabels()
			l["app.kubernetes.io/component"] = "edited"
			o.SetLabels(l)
			if err := r.Client.Update(ctx, o, client.FieldOwner("kubectl-edit")); err != nil {
				t.Fatal(err)
			}
			if wrote, err := r.apply(ctx, kv, live(c), c); err != nil || !wrote {
				t.Fatalf("edited: wrote %v, %v", wrote, err)
			}
			if same, err := c.same(live(c)); err != nil || !same {
				t.Fatalf("after repair: same %v, %v", same, err)
			}
		})
	}
}

// TestLooseComparison checks the comparison of kinds without typed apply
// configurations: every desired field must be there with its value; other
// fields do not matter.
func TestLooseComparison(t *testing.T) {
	kv := newKV(nil)
	desired := desiredServiceMonitor(kv)
	c := looseChild(desired)
	cases := map[string]struct {
		edit func(map[string]any)
		same bool
	}{
		"as applied": {func(map[string]any) {}, true},
		"fields of others": {func(o map[string]any) {
			o["spec"].(map[string]any)["jobLabel"] = "x"
			o["metadata"].(map[string]any)["labels"].(map[string]any)["team"] = "storage"
		}, true},
		"a changed value": {func(o map[string]any) { o["spec"].(map[string]any)["endpoints"] = []any{} }, false},
		"a lost label": {func(o map[string]any) {
			delete(o["metadata"].(map[string]any)["labels"].(map[string]any), "app.kubernetes.io/component")
		}, false},
	}
	for name, tc := range cases {
		live := desired.DeepCopy()
		tc.edit(live.Object)
		if same, err := c.same(live); err != nil || same != tc.same {
			t.Errorf("%s: same %v (%v), want %v", name, same, err, tc.same)
		}
	}
}

// TestReconcileTwiceWritesOnce reconciles a new KVStore on the fake API
// server twice: the first creates every child, the second writes nothing
// and records no event.
func TestReconcileTwiceWritesOnce(t *testing.T) {
	kv := newKV(func(k *kvv1.KVStore) { k.Spec.Replicas = ptr(int32(3)) })
	kv.Generation = 0
	r, cc, rec := fakeReconciler(t, kv)
	req := reconcile.Request{NamespacedName: key(kv.Namespace, kv.Name)}
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	if cc.writes.Load() == 0 || rec.n.Load() == 0 {
		t.Fatalf("the first reconcile wrote %v with %d events", cc.log, rec.n.Load())
	}
	cc.writes.Store(0)
	cc.log = nil
	rec.n.Store(0)
	if _, err := r.Reconcile(ctx, req); err != nil {
		t.Fatal(err)
	}
	if cc.writes.Load() != 0 || rec.n.Load() != 0 {
		t.Errorf("the second reconcile: %d writes %v, %d events", cc.writes.Load(), cc.log, rec.n.Load())
	}
}
