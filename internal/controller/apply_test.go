package controller

import (
	"bytes"
	"testing"
	"time"

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
// changed is. (That the repaired object then compares equal again is
// TestDriftIsRepaired's settle, on a real API server: the fake's Update
// takes more fields than the API server would.)
func TestApplyComparison(t *testing.T) {
	kv := newKV(func(k *kvv1.KVStore) {
		k.Spec.Replicas = ptr(int32(3))
		k.Spec.Ingress = kvv1.IngressSpec{Enabled: true, Host: "kv.example.com"}
	})
	now := time.Now()
	r, cc, _ := fakeReconciler(t)
	// An apply fills the desired object with the server's answer, so each
	// step plans afresh from what the fake API server holds, as a
	// reconcile does.
	planned := func(k objKey) (child, client.Object) {
		t.Helper()
		obs, err := r.observe(ctx, kv)
		if err != nil {
			t.Fatal(err)
		}
		p, err := planFor(kv, obs, testOpts, now, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range p.children {
			if c.key == k {
				return c, obs.objects[k]
			}
		}
		t.Fatalf("%v not planned", k)
		return child{}, nil
	}
	first, err := planFor(kv, observe(kv).obs, testOpts, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range first.children {
		k := c.key
		t.Run(k.kind+" "+k.name, func(t *testing.T) {
			if k.kind == "NetworkPolicy" {
				// controller-runtime's fake client refuses any NetworkPolicy
				// apply ("failed to merge config: expected objects with types
				// from the same schema"); the envtest TestNetworkPolicyFollowsSpec
				// covers it on a real API server.
				t.Skip("the fake client cannot apply NetworkPolicies")
			}
			c, live := planned(k)
			if wrote, err := r.apply(ctx, kv, live, c); live != nil || err != nil || !wrote {
				t.Fatalf("create: existed %v, wrote %v, %v", live != nil, wrote, err)
			}
			before := cc.writes.Load()
			c, live = planned(k)
			if wrote, err := r.apply(ctx, kv, live, c); err != nil || wrote || cc.writes.Load() != before {
				t.Fatalf("unchanged: wrote %v (%v), %v", wrote, cc.log, err)
			}
			// Someone else takes a label the operator owns.
			_, o := planned(k)
			l := o.GetLabels()
			l["app.kubernetes.io/component"] = "edited"
			o.SetLabels(l)
			if err := r.Client.Update(ctx, o, client.FieldOwner("kubectl-edit")); err != nil {
				t.Fatal(err)
			}
			c, live = planned(k)
			if wrote, err := r.apply(ctx, kv, live, c); err != nil || !wrote {
				t.Fatalf("edited: wrote %v, %v", wrote, err)
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
	kv := newKV(func(k *kvv1.KVStore) {
		k.Spec.Replicas = ptr(int32(3))
		// The fake client cannot apply NetworkPolicies (see TestApplyComparison).
		k.Spec.NetworkPolicy.Enabled = ptr(false)
	})
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
