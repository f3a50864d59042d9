package controller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/yaml"

	kvv1 "kvstore.dev/kvstore/api/v1"
	"kvstore.dev/kvstore/internal/backup"
	"kvstore.dev/kvstore/internal/kubetest"
)

// TestOperatorRunsWithGeneratedRBAC runs the reconciler, with the
// operator's cache and client options, as a ServiceAccount bound to
// config/rbac/role.yaml only (impersonated; envtest runs no pods) against
// a control plane of its own, so the suite's all-powerful reconciler does
// not do the work for it: the children are created and the status written,
// and no request is refused.
func TestOperatorRunsWithGeneratedRBAC(t *testing.T) {
	env, err := kubetest.Environment("testdata/crds")
	if err != nil {
		t.Skip(err)
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start envtest: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	admin, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}

	role := &rbacv1.ClusterRole{}
	if err := yaml.UnmarshalStrict(mustRead(t, kubetest.Root()+"/config/rbac/role.yaml"), role); err != nil {
		t.Fatalf("role.yaml: %v", err)
	}
	const opNS, sa, storeNS = "op-system", "op", "apps"
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: opNS}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: storeNS}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: sa}},
		role,
		&rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: role.Name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: opNS, Name: sa}},
		},
	}
	for _, o := range objs {
		if err := admin.Create(ctx, o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}

	as := rest.CopyConfig(cfg)
	as.Impersonate = rest.ImpersonationConfig{UserName: fmt.Sprintf("system:serviceaccount:%s:%s", opNS, sa)}
	mgr, err := ctrl.NewManager(as, ctrl.Options{
		Scheme:     scheme,
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Cache:      CacheOptions(),
		Client:     ClientOptions(),
		Controller: config.Controller{SkipNameValidation: ptr(true)}, // the suite's controller has the name
	})
	if err != nil {
		t.Fatal(err)
	}
	opts := testOpts
	opts.OperatorNamespace = opNS
	r := &Reconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: mgr.GetEventRecorder(FieldOwner), Options: opts}
	if err := r.SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	br := &BackupReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: mgr.GetEventRecorder(FieldOwner), Options: opts,
		Source: fixedMember("kv-0")}
	if err := br.SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	startManager(t, ctx, mgr)

	// A user token Secret, unlabelled: read through the API reader (get).
	tok := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: storeNS, Name: "app-token"}, Data: map[string][]byte{"token": []byte("app-secret-token")}}
	if err := admin.Create(ctx, tok); err != nil {
		t.Fatal(err)
	}
	kv := sample(t, storeNS)
	kv.Spec.Auth.Tokens = []kvv1.TokenSpec{tokenSpec("app", "readonly")}
	kv.Spec.Auth.Tokens[0].SecretRef.Name = "app-token"
	if err := admin.Create(ctx, kv); err != nil {
		t.Fatal(err)
	}

	getAdmin := func(name string, o client.Object) error {
		return admin.Get(ctx, key(storeNS, name), o)
	}
	for name, o := range children(kv) {
		eventually(t, "child "+name, func() error { return getAdmin(name, o) })
	}
	eventually(t, "StatefulSet", func() error { return getAdmin(kv.Name, &appsv1.StatefulSet{}) })
	eventually(t, "status written", func() error {
		cur := &kvv1.KVStore{}
		if err := getAdmin(kv.Name, cur); err != nil {
			return err
		}
		if cur.Status.ObservedGeneration != cur.Generation {
			return fmt.Errorf("observedGeneration %d, generation %d", cur.Status.ObservedGeneration, cur.Generation)
		}
		if c := meta.FindStatusCondition(cur.Status.Conditions, kvv1.ConditionDegraded); c != nil && c.Status == metav1.ConditionTrue {
			return fmt.Errorf("degraded: %s: %s", c.Reason, c.Message)
		}
		return nil
	})
	// One more reconcile by hand: no error, none of them Forbidden.
	eventually(t, "the KVStore in the restricted manager's cache", func() error {
		return mgr.GetClient().Get(ctx, key(storeNS, kv.Name), &kvv1.KVStore{})
	})
	if _, err := r.Reconcile(ctx, reconcile.Request{NamespacedName: key(storeNS, kv.Name)}); err != nil {
		t.Errorf("reconcile as the ServiceAccount: %v", err)
	}

	// A backup to a PersistentVolumeClaim: its Job created, and its
	// outcome read from the Job's pod (list), as the ServiceAccount.
	b := &kvv1.KVStoreBackup{ObjectMeta: metav1.ObjectMeta{Namespace: storeNS, Name: "to-pvc"}, Spec: kvv1.KVStoreBackupSpec{KVStoreName: kv.Name,
		Destination: &kvv1.BackupDestination{PersistentVolumeClaim: &kvv1.PVCDestination{ClaimName: "backups"}}}}
	if err := admin.Create(ctx, b); err != nil {
		t.Fatal(err)
	}
	job := &batchv1.Job{}
	eventually(t, "the backup Job", func() error { return getAdmin(backupJobName(b), job) })
	result := backup.Result{Name: "kvstore-20261203T120000.000Z", SHA256: strings.Repeat("ab", 32), SizeBytes: 1, Revision: 1}
	finishJobWith(t, admin, job, 0, string(result.Encode()), false)
	eventually(t, "the backup Succeeded", func() error {
		if err := getAdmin(b.Name, b); err != nil {
			return err
		}
		if b.Status.Phase != kvv1.BackupSucceeded || b.Status.SHA256 != result.SHA256 {
			return fmt.Errorf("status %+v", b.Status)
		}
		return nil
	})

	var evs corev1.EventList
	if err := admin.List(ctx, &evs, client.InNamespace(storeNS)); err != nil {
		t.Fatal(err)
	}
	for _, e := range evs.Items {
		if strings.Contains(strings.ToLower(e.Message), "forbidden") {
			t.Errorf("event %s: %s", e.Reason, e.Message)
		}
	}
}

// fixedMember is a SnapshotSource that names pod as the member to back up
// from and streams nothing.
type fixedMember string

func (f fixedMember) Snapshot(context.Context, *kvv1.KVStore, ServerAccess) (io.ReadCloser, backup.Info, string, error) {
	return nil, backup.Info{}, "", errors.New("fixedMember streams no snapshot")
}

func (f fixedMember) Member(context.Context, *kvv1.KVStore, ServerAccess) (string, error) {
	return string(f), nil
}
