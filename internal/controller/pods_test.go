package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kvv1 "kvstore.dev/kvstore/api/v1"
	"kvstore.dev/kvstore/wire"
)

// TestEvenReplicasRefused checks that the API server refuses an even
// spec.replicas on create, update and through the scale subresource, with a
// message that names the field and says why, and accepts odd ones.
func TestEvenReplicasRefused(t *testing.T) {
	ns := newNamespace(t)
	const why = "spec.replicas must be odd (1, 3, 5, 7 or 9): a Raft cluster of 2k servers needs k+1 of them for a quorum"
	refused := func(t *testing.T, err error) {
		t.Helper()
		if err == nil {
			t.Fatal("accepted; want refused")
		}
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.replicas: Invalid value") || !strings.Contains(err.Error(), why) {
			t.Fatalf("error %v\nwant Invalid on spec.replicas containing %q", err, why)
		}
	}
	for _, n := range []int32{2, 4, 6, 8} {
		t.Run(fmt.Sprintf("create %d", n), func(t *testing.T) {
			kv := &kvv1.KVStore{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("even-%d", n), Namespace: ns}, Spec: kvv1.KVStoreSpec{Replicas: ptr(n)}}
			err := k8s.Create(ctx, kv)
			if err == nil {
				_ = k8s.Delete(ctx, kv)
			}
			refused(t, err)
		})
	}
	for _, n := range []int32{1, 3, 5, 7, 9} {
		t.Run(fmt.Sprintf("create %d", n), func(t *testing.T) {
			kv := &kvv1.KVStore{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("odd-%d", n), Namespace: ns}, Spec: kvv1.KVStoreSpec{Replicas: ptr(n)}}
			if err := k8s.Create(ctx, kv); err != nil {
				t.Fatalf("refused: %v", err)
			}
		})
	}
	t.Run("update 3 to 4", func(t *testing.T) {
		kv := &kvv1.KVStore{}
		if err := get(ns, "odd-3", kv); err != nil {
			t.Fatal(err)
		}
		kv.Spec.Replicas = ptr(int32(4))
		refused(t, k8s.Update(ctx, kv))
	})
	t.Run("scale 3 to 2", func(t *testing.T) {
		kv := &kvv1.KVStore{ObjectMeta: metav1.ObjectMeta{Name: "odd-3", Namespace: ns}}
		refused(t, k8s.SubResource("scale").Update(ctx, kv, client.WithSubResourceBody(&autoscalingv1.Scale{Spec: autoscalingv1.ScaleSpec{Replicas: 2}})))
	})
	t.Run("scale 3 to 5", func(t *testing.T) {
		kv := &kvv1.KVStore{ObjectMeta: metav1.ObjectMeta{Name: "odd-3", Namespace: ns}}
		if err := k8s.SubResource("scale").Update(ctx, kv, client.WithSubResourceBody(&autoscalingv1.Scale{Spec: autoscalingv1.ScaleSpec{Replicas: 5}})); err != nil {
			t.Fatalf("refused: %v", err)
		}
	})
}

// TestServerPodResources checks that the StatefulSet's server container
// gets the default requests, limit and GOMEMLIMIT when spec.resources is
// empty, and the user's (without GOMEMLIMIT when there is no memory limit)
// once they are set.
func TestServerPodResources(t *testing.T) {
	ns := newNamespace(t)
	kv := create(t, &kvv1.KVStore{ObjectMeta: metav1.ObjectMeta{Name: "res", Namespace: ns}})
	container := func() (corev1.Container, error) {
		sts := &appsv1.StatefulSet{}
		if err := get(ns, "res", sts); err != nil {
			return corev1.Container{}, err
		}
		return sts.Spec.Template.Spec.Containers[0], nil
	}
	goMemLimit := func(c corev1.Container) string {
		for _, e := range c.Env {
			if e.Name == "GOMEMLIMIT" {
				return e.Value
			}
		}
		return ""
	}
	eventually(t, "default resources", func() error {
		c, err := container()
		if err != nil {
			return err
		}
		r := c.Resources
		if r.Requests.Cpu().String() != "100m" || r.Requests.Memory().String() != "256Mi" || r.Limits.Memory().String() != "1Gi" || !r.Limits.Cpu().IsZero() {
			return fmt.Errorf("resources %v, want requests cpu 100m memory 256Mi, limit memory 1Gi, no CPU limit", r)
		}
		if got := goMemLimit(c); got != "966367620" {
			return fmt.Errorf("GOMEMLIMIT %q, want 966367620 (90%% of 1Gi)", got)
		}
		return nil
	})
	patch(t, kv, func(k *kvv1.KVStore) {
		k.Spec.Resources = corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi")}}
	})
	eventually(t, "a memory limit of 2Gi", func() error {
		c, err := container()
		if err != nil {
			return err
		}
		if r := c.Resources; r.Limits.Memory().String() != "2Gi" || len(r.Requests) != 0 {
			return fmt.Errorf("resources %v, want the 2Gi limit alone", r)
		}
		if got := goMemLimit(c); got != "1932735240" {
			return fmt.Errorf("GOMEMLIMIT %q, want 1932735240 (90%% of 2Gi)", got)
		}
		return nil
	})
	patch(t, kv, func(k *kvv1.KVStore) {
		k.Spec.Resources = corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")}}
	})
	eventually(t, "no memory limit", func() error {
		c, err := container()
		if err != nil {
			return err
		}
		if r := c.Resources; len(r.Limits) != 0 || r.Requests.Memory().String() != "512Mi" {
			return fmt.Errorf("resources %v, want requests memory 512Mi alone", r)
		}
		if got := goMemLimit(c); got != "" {
			return fmt.Errorf("GOMEMLIMIT %q without a memory limit", got)
		}
		return nil
	})
}

// fakeCluster is a ClusterClient whose view the test sets; it changes
// nothing.
type fakeCluster struct {
	mu   sync.Mutex
	view wire.ClusterStatus
}

func (f *fakeCluster) set(v wire.ClusterStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.view = v
}

func (f *fakeCluster) Status(context.Context, *kvv1.KVStore, ServerAccess) (wire.ClusterStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.view, nil
}

func (f *fakeCluster) AddMember(context.Context, *kvv1.KVStore, ServerAccess, string, string, bool) error {
	return nil
}

func (f *fakeCluster) RemoveMember(context.Context, *kvv1.KVStore, ServerAccess, string) error {
	return nil
}

// PodStatus answers for no pod: the view comes through the Service only.
func (f *fakeCluster) PodStatus(context.Context, *kvv1.KVStore, ServerAccess, string) (wire.ClusterStatus, error) {
	return wire.ClusterStatus{}, errors.New("fakeCluster: no pod answers")
}

func (f *fakeCluster) Recover(context.Context, *kvv1.KVStore, ServerAccess, string, wire.RecoverRequest) (wire.RecoverResponse, error) {
	return wire.RecoverResponse{}, errors.New("fakeCluster: no recovery")
}

// TestPDBFollowsVoters runs reconciles against servers reporting a scale up
// from one voter to three (non-voters lagging, so none is promoted) and
// checks the PodDisruptionBudget the API server holds after each: no
// eviction while fewer than three servers vote, whatever the number of
// pods, and one with three voters.
func TestPDBFollowsVoters(t *testing.T) {
	ns := newNamespace(t)
	kv := sample(t, ns)
	kv.Spec.Ingress = kvv1.IngressSpec{}
	create(t, kv)
	waitChildren(t, kv)
	fc := &fakeCluster{}
	r := &Reconciler{Client: mgrClient, Recorder: &noteRecorder{}, Options: testOpts, Cluster: fc}
	lagging := func(id string) wire.Member { return member(id, "Nonvoter", 0) }
	voter := func(id string) wire.Member { return member(id, "Voter", 1000) }
	steps := []struct {
		members []wire.Member
		want    int32
	}{
		{[]wire.Member{voter("demo-0"), lagging("demo-1"), lagging("demo-2")}, 0},
		{[]wire.Member{voter("demo-0"), voter("demo-1"), lagging("demo-2")}, 0},
		{[]wire.Member{voter("demo-0"), voter("demo-1"), voter("demo-2")}, 1},
	}
	for _, s := range steps {
		fc.set(wire.ClusterStatus{LeaderID: "demo-0", Members: s.members})
		// The suite's own reconciler (without servers to ask) runs too; it
		// may only tighten the budget, so reconcile until it settles.
		eventually(t, fmt.Sprintf("maxUnavailable %d with %d members", s.want, len(s.members)), func() error {
			if _, err := r.Reconcile(ctx, reconcile.Request{NamespacedName: key(ns, "demo")}); err != nil {
				return err
			}
			pdb := &policyv1.PodDisruptionBudget{}
			if err := k8s.Get(ctx, key(ns, "demo"), pdb); err != nil {
				return err
			}
			if pdb.Spec.MinAvailable != nil || pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != int(s.want) {
				return fmt.Errorf("PDB minAvailable %v maxUnavailable %v", pdb.Spec.MinAvailable, pdb.Spec.MaxUnavailable)
			}
			return nil
		})
	}
}
