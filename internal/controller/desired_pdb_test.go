package controller

import (
	"testing"

	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	kvv1 "kvstore.dev/kvstore/api/v1"
	"kvstore.dev/kvstore/wire"
)

// TestPDBMaxUnavailable checks the budget against what Raft tolerates: with
// V voters no more than (V-1)/2 may go, whatever the number of pods.
func TestPDBMaxUnavailable(t *testing.T) {
	voter := func(id string) wire.Member { return member(id, "Voter", 1000) }
	nonvoter := func(id string) wire.Member { return member(id, "Nonvoter", 1000) }
	view := func(ms ...wire.Member) *wire.ClusterStatus { return &wire.ClusterStatus{LeaderID: "kv-0", Members: ms} }
	seen := func(suffrages ...string) []kvv1.MemberStatus {
		var ms []kvv1.MemberStatus
		for i, s := range suffrages {
			ms = append(ms, kvv1.MemberStatus{Name: podName(newKV(nil), int32(i)), Suffrage: s})
		}
		return ms
	}
	promote := func(id string) membershipStep { m := nonvoter(id); return membershipStep{promote: &m} }
	remove := func(m wire.Member) membershipStep { return membershipStep{remove: &m} }
	cases := map[string]struct {
		replicas int32
		in       pdbInputs
		want     int32
	}{
		// Settled clusters.
		"one server":   {1, pdbInputs{view: view(voter("kv-0"))}, 1},
		"two voters":   {2, pdbInputs{view: view(voter("kv-0"), voter("kv-1"))}, 0},
		"three voters": {3, pdbInputs{view: view(voter("kv-0"), voter("kv-1"), voter("kv-2"))}, 1},
		"four voters":  {4, pdbInputs{view: view(voter("kv-0"), voter("kv-1"), voter("kv-2"), voter("kv-3"))}, 1},
		"five voters":  {5, pdbInputs{view: view(voter("kv-0"), voter("kv-1"), voter("kv-2"), voter("kv-3"), voter("kv-4"))}, 2},
		"nine voters": {9, pdbInputs{view: view(voter("kv-0"), voter("kv-1"), voter("kv-2"), voter("kv-3"), voter("kv-4"),
			voter("kv-5"), voter("kv-6"), voter("kv-7"), voter("kv-8"))}, 4},

		// Scale up: non-voters do not protect the quorum.
		"3 to 5, two non-voters": {5, pdbInputs{view: view(voter("kv-0"), voter("kv-1"), voter("kv-2"), nonvoter("kv-3"), nonvoter("kv-4"))}, 1},
		"1 to 3, a lone voter":   {3, pdbInputs{view: view(voter("kv-0"), nonvoter("kv-1"), nonvoter("kv-2"))}, 0},
		"1 to 3, promoting the second voter": {3, pdbInputs{view: view(voter("kv-0"), nonvoter("kv-1"), nonvoter("kv-2")),
			step: promote("kv-1")}, 0},
		"1 to 3, two voters": {3, pdbInputs{view: view(voter("kv-0"), voter("kv-1"), nonvoter("kv-2"))}, 0},
		"3 to 5, promoting the fourth voter": {5, pdbInputs{view: view(voter("kv-0"), voter("kv-1"), voter("kv-2"), nonvoter("kv-3"), nonvoter("kv-4")),
			step: promote("kv-3")}, 1},

		// Scale down: a removal counts as done and as not done.
		"3 to 1, removing the third voter": {1, pdbInputs{view: view(voter("kv-0"), voter("kv-1"), voter("kv-2")),
			step: remove(voter("kv-2"))}, 0},
		"3 to 1, removing the second voter": {1, pdbInputs{view: view(voter("kv-0"), voter("kv-1")),
			step: remove(voter("kv-1"))}, 0},
		"3 to 1, done":                {1, pdbInputs{view: view(voter("kv-0"))}, 1},
		"removing a non-voter":        {3, pdbInputs{view: view(voter("kv-0"), voter("kv-1"), voter("kv-2"), nonvoter("kv-3")), step: remove(nonvoter("kv-3"))}, 1},
		"a view loosens the live PDB": {3, pdbInputs{view: view(voter("kv-0"), voter("kv-1"), voter("kv-2")), live: ptr(int32(0))}, 1},

		// Without a view.
		"new store of one":                       {1, pdbInputs{}, 1},
		"new store of three":                     {3, pdbInputs{}, 0},
		"last seen three voters, no PDB":         {3, pdbInputs{lastMembers: seen("Voter", "Voter", "Voter")}, 1},
		"last seen three voters, PDB allows 0":   {3, pdbInputs{lastMembers: seen("Voter", "Voter", "Voter"), live: ptr(int32(0))}, 0},
		"last seen a lone voter of three":        {3, pdbInputs{lastMembers: seen("Voter", "Nonvoter", "Nonvoter"), live: ptr(int32(1))}, 0},
		"last seen five voters, PDB allows 1":    {5, pdbInputs{lastMembers: seen("Voter", "Voter", "Voter", "Voter", "Voter"), live: ptr(int32(1))}, 1},
		"scaled to three, never seen, PDB was 1": {3, pdbInputs{live: ptr(int32(1))}, 0},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			kv := newKV(func(k *kvv1.KVStore) { k.Spec.Replicas = ptr(tc.replicas) })
			if got := pdbMaxUnavailable(kv, tc.in); got != tc.want {
				t.Errorf("maxUnavailable %d, want %d", got, tc.want)
			}
		})
	}
}

func TestDesiredPDB(t *testing.T) {
	kv := newKV(func(k *kvv1.KVStore) { k.Spec.Replicas = ptr(int32(3)) })
	pdb := desiredPDB(kv, 1)
	if pdb.Spec.MinAvailable != nil || pdb.Spec.MaxUnavailable == nil || *pdb.Spec.MaxUnavailable != intstr.FromInt32(1) {
		t.Errorf("spec minAvailable %v maxUnavailable %v, want only maxUnavailable 1", pdb.Spec.MinAvailable, pdb.Spec.MaxUnavailable)
	}
	if got := pdb.Spec.Selector.MatchLabels; len(got) != 2 || got["app.kubernetes.io/instance"] != "kv" {
		t.Errorf("selector %v, want every server pod of kv", got)
	}
}

func TestLiveMaxUnavailable(t *testing.T) {
	kv := newKV(nil)
	ours := metav1.ObjectMeta{Name: "kv", OwnerReferences: []metav1.OwnerReference{{UID: kv.UID, Controller: ptr(true)}}}
	theirs := metav1.ObjectMeta{Name: "kv", OwnerReferences: []metav1.OwnerReference{{UID: "other", Controller: ptr(true)}}}
	one, two, half := intstr.FromInt32(1), intstr.FromInt32(2), intstr.FromString("50%")
	cases := map[string]struct {
		pdb  *policyv1.PodDisruptionBudget
		want *int32
	}{
		"none":                  {nil, nil},
		"ours":                  {&policyv1.PodDisruptionBudget{ObjectMeta: ours, Spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: &one}}, ptr(int32(1))},
		"not ours":              {&policyv1.PodDisruptionBudget{ObjectMeta: theirs, Spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: &one}}, nil},
		"an older minAvailable": {&policyv1.PodDisruptionBudget{ObjectMeta: ours, Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: &two}}, nil},
		"a percentage":          {&policyv1.PodDisruptionBudget{ObjectMeta: ours, Spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: &half}}, nil},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := liveMaxUnavailable(tc.pdb, kv)
			if (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want) {
				t.Errorf("got %v, want %v", deref(got), deref(tc.want))
			}
		})
	}
}

func deref(p *int32) any {
	if p == nil {
		return "nil"
	}
	return *p
}
