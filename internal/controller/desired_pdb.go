package controller

import (
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	policyv1ac "k8s.io/client-go/applyconfigurations/policy/v1"

	kvv1 "kvstore.dev/kvstore/api/v1"
	"kvstore.dev/kvstore/wire"
)

// The PodDisruptionBudget protects the quorum of the Raft voters, not a
// number of pods. It selects every server pod and sets maxUnavailable to the
// number of voters that may be down while the others still form a quorum.
// A pod that is not ready counts against the budget whether it is a voter
// or not, so no eviction can take more voters than Raft tolerates, however
// many non-voters (servers catching up after a scale up, or leaving) there
// are. A minAvailable would be wrong here: ready non-voters would count
// toward it and let voters go.

// pdbInputs is what the budget is planned from.
type pdbInputs struct {
	// view is the Raft configuration as the servers reported it in this
	// reconcile, nil when they did not answer.
	view *wire.ClusterStatus
	// step is the membership step this reconcile takes (a promotion or a
	// removal changes the voters right after the view was read).
	step membershipStep
	// lastMembers are status.members: the configuration last seen.
	lastMembers []kvv1.MemberStatus
	// live is the maxUnavailable of the operator's PDB as it is now, nil
	// when there is none (or it has none).
	live *int32
}

// disruptionsAllowed is how many of voters servers may be down with the
// rest still a quorum: (voters-1)/2, so none of 2 and one of 3 or 4. A
// store that is one server by spec (single) allows one: it has no quorum to
// keep but its one server, and a budget of zero would block every node
// drain. A lone voter of a store meant to be larger (while the others
// catch up) allows none.
func disruptionsAllowed(voters int32, single bool) int32 {
	switch {
	case voters <= 0:
		return 0
	case voters == 1 && single:
		return 1
	}
	return (voters - 1) / 2
}

// pdbMaxUnavailable plans the budget. With a view it is what the voters
// allow, before and after this reconcile's step, whichever is less: the
// step may or may not have gone through when the PDB is applied. Without a
// view the budget never loosens: it is what the last seen members allow,
// but no more than the live PDB allows, because the members in the status
// were read before the last step. A store never seen allows nothing,
// unless it is one server.
func pdbMaxUnavailable(kv *kvv1.KVStore, in pdbInputs) int32 {
	single := replicas(kv) == 1
	if in.view != nil {
		var voters int32
		for _, m := range in.view.Members {
			if m.Suffrage == wire.SuffrageVoter {
				voters++
			}
		}
		budget := disruptionsAllowed(voters, single)
		if in.step.promote != nil {
			budget = min(budget, disruptionsAllowed(voters+1, single))
		}
		if in.step.remove != nil && in.step.remove.Suffrage == wire.SuffrageVoter {
			budget = min(budget, disruptionsAllowed(voters-1, single))
		}
		return budget
	}
	var voters int32
	for _, m := range in.lastMembers {
		if m.Suffrage == "Voter" {
			voters++
		}
	}
	budget := int32(0)
	switch {
	case voters > 0:
		budget = disruptionsAllowed(voters, single)
	case single:
		budget = 1
	}
	if in.live != nil && *in.live < budget {
		budget = *in.live
	}
	return budget
}

// liveMaxUnavailable is the integer maxUnavailable of pdb, the operator's
// PDB of kv, or nil when there is no such PDB or it sets none (one written
// by an older operator, with minAvailable).
func liveMaxUnavailable(pdb *policyv1.PodDisruptionBudget, kv *kvv1.KVStore) *int32 {
	if pdb == nil || !metav1IsControlledBy(pdb, kv) {
		return nil
	}
	mu := pdb.Spec.MaxUnavailable
	if mu == nil || mu.Type != intstr.Int || mu.IntVal < 0 {
		return nil
	}
	return ptr(mu.IntVal)
}

// desiredPDB is the PodDisruptionBudget of kv's servers, allowing
// maxUnavailable of them down at once (pdbMaxUnavailable).
func desiredPDB(kv *kvv1.KVStore, maxUnavailable int32) *policyv1ac.PodDisruptionBudgetApplyConfiguration {
	n := namesFor(kv)
	return policyv1ac.PodDisruptionBudget(n.kv, n.namespace).
		WithLabels(labels(kv, "server")).
		WithOwnerReferences(ownerRef(kv)).
		WithSpec(policyv1ac.PodDisruptionBudgetSpec().
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(selectorLabels(kv))).
			WithMaxUnavailable(intstr.FromInt32(maxUnavailable)))
}
