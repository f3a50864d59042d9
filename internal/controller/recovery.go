package controller

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kvv1 "kvstore.dev/kvstore/api/v1"
	"kvstore.dev/kvstore/wire"
)

// Recovery from a lost quorum (spec.recovery.forceNewClusterFrom, issue
// 14). Never without a request. The phases, each read back from
// status.recovery on the next reconcile, so that an operator that crashes
// continues where it was and never picks a second survivor:
//
//   - Waiting: the request is valid; the quorum is not lost, or not for
//     minUnreachable yet, or no server answers to recover from.
//   - Refused: the request is invalid (confirmUID, minUnreachable,
//     member); the message names the field.
//   - Recovering: the survivor is chosen and recorded first; from the next
//     reconcile on, its POST /api/v1/cluster/recover is called (the
//     server restarts and comes back as a one-server cluster) until it
//     leads alone.
//   - Rejoining: the other servers' pods and PersistentVolumeClaims (their
//     data is the lost cluster's) are deleted; they come back empty, join
//     as non-voters and are promoted by the membership step.
//   - Succeeded: every server is a voter again. Failed: the survivor did
//     not lead alone within recoveryTimeout.

// DefaultMinUnreachable and MinMinUnreachable are the default and the
// least time a quorum must be lost before a requested recovery acts.
const (
	DefaultMinUnreachable = 5 * time.Minute
	MinMinUnreachable     = 30 * time.Second
)

// recoveryTimeout is how long the survivor may take to lead alone once the
// recovery started; then the recovery is Failed.
const recoveryTimeout = 10 * time.Minute

// recoveryRetry is how soon a KVStore is looked at again while a recovery
// waits for something the servers, not Kubernetes, report.
const recoveryRetry = 2 * time.Second

// recoveryObs is what the recovery decision reads from the servers.
type recoveryObs struct {
	// view is the cluster as a server behind the client Service reported
	// it; nil when none answered.
	view *wire.ClusterStatus
	// probed is whether the pods were asked one by one (the client Service
	// named no leader); pods holds the answers, by pod name.
	probed bool
	pods   map[string]wire.ClusterStatus
	// stsReplicas is the StatefulSet's replicas (0 when it does not exist).
	stsReplicas int32
}

// recoveryStep is what the operator does about a recovery, decided by
// decideRecovery.
type recoveryStep struct {
	// status is status.recovery from now on (nil: none).
	status *kvv1.RecoveryStatus
	// recoverPod, when set, is the pod whose recover endpoint is called
	// with request.
	recoverPod string
	request    wire.RecoverRequest
	// wipe are the pods whose PersistentVolumeClaims, when created before
	// cutoff, are deleted, and the pods with them.
	wipe   []string
	cutoff time.Time
	// condition is the Recovering condition; nil removes it.
	condition *metav1.Condition
	// event is recorded once, when the phase or its message changes.
	event *event
	// warning makes event a Warning.
	warning bool
	// requeue, when not zero, is the longest until the next look.
	requeue time.Duration
}

// quorumState is whether kv's Raft cluster has lost its quorum, as seen
// from ro: lost when no server that answers sees a leader and fewer than a
// quorum of the voters answer. why says what was seen.
func quorumState(kv *kvv1.KVStore, ro recoveryObs, lastMembers []kvv1.MemberStatus) (lost bool, why string) {
	if ro.view != nil && ro.view.LeaderID != "" {
		return false, fmt.Sprintf("%s leads the cluster", ro.view.LeaderID)
	}
	if !ro.probed {
		return false, "the servers were not asked"
	}
	for _, name := range sortedPods(kv, ro.pods) {
		if l := ro.pods[name].LeaderID; l != "" {
			return false, fmt.Sprintf("%s sees %s as the leader", name, l)
		}
	}
	voters := map[string]bool{}
	if newest, ok := newestView(kv, ro.pods); ok {
		for _, m := range newest.Members {
			if m.Suffrage == wire.SuffrageVoter {
				voters[m.ID] = true
			}
		}
	} else {
		for _, m := range lastMembers {
			if m.Suffrage == wire.SuffrageVoter {
				voters[m.Name] = true
			}
		}
	}
	if len(voters) == 0 {
		for i := range replicas(kv) {
			voters[podName(kv, i)] = true
		}
	}
	answering := 0
	for v := range voters {
		if _, ok := ro.pods[v]; ok {
			answering++
		}
	}
	if q := quorum(int32(len(voters))); int32(answering) >= q {
		return false, fmt.Sprintf("%d of %d voters answer but none sees a leader (an election?)", answering, len(voters))
	}
	return true, fmt.Sprintf("%d of %d voters answer and none sees a leader", answering, len(voters))
}

// newestView is the answer of the pod with the highest (last log term,
// last log index): the newest configuration.
func newestView(kv *kvv1.KVStore, pods map[string]wire.ClusterStatus) (wire.ClusterStatus, bool) {
	names := sortedPods(kv, pods)
	if len(names) == 0 {
		return wire.ClusterStatus{}, false
	}
	best := names[0]
	for _, n := range names[1:] {
		if logAfter(pods[n].Self, pods[best].Self) {
			best = n
		}
	}
	return pods[best], true
}

// logAfter reports whether a's log position (last log term, last log
// index) is after b's.
func logAfter(a, b wire.NodeStatus) bool {
	return cmp.Or(cmp.Compare(a.LastLogTerm, b.LastLogTerm), cmp.Compare(a.LastLogIndex, b.LastLogIndex)) > 0
}

// sortedPods are the names of pods, by ordinal.
func sortedPods(kv *kvv1.KVStore, pods map[string]wire.ClusterStatus) []string {
	names := make([]string, 0, len(pods))
	for n := range pods {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int { return cmp.Compare(ordinal(kv, a), ordinal(kv, b)) })
	return names
}

// survivorCandidate reports whether pod's answer st can be recovered
// from: the server is who it says, of this KVStore's current pods, and a
// member of a multi-server configuration.
func survivorCandidate(kv *kvv1.KVStore, pod string, st wire.ClusterStatus) bool {
	o := ordinal(kv, pod)
	return st.Enabled && st.Self.ID == pod && o >= 0 && o < replicas(kv) && len(st.Members) >= 2 &&
		slices.ContainsFunc(st.Members, func(m wire.Member) bool { return m.ID == pod })
}

// pickSurvivor is the pod to recover from: member when named, else the
// candidate with the highest (last log term, last log index), the lowest
// ordinal on a tie. ok is false when there is none; why says why.
func pickSurvivor(kv *kvv1.KVStore, pods map[string]wire.ClusterStatus, member string) (name string, ok bool, why string) {
	if member != "" {
		st, answered := pods[member]
		switch {
		case !answered:
			return "", false, fmt.Sprintf("%s (spec.recovery.forceNewClusterFrom.member) does not answer", member)
		case !survivorCandidate(kv, member, st):
			return "", false, fmt.Sprintf("%s (spec.recovery.forceNewClusterFrom.member) is not a member of a multi-server cluster", member)
		}
		return member, true, ""
	}
	for _, n := range sortedPods(kv, pods) {
		if survivorCandidate(kv, n, pods[n]) && (name == "" || logAfter(pods[n].Self, pods[name].Self)) {
			name = n
		}
	}
	if name == "" {
		return "", false, "no server answers that holds the cluster's data: nothing to recover from (restore a backup instead)"
	}
	return name, true, ""
}

// highestCommit is the highest commit index in ro.
func highestCommit(ro recoveryObs) uint64 {
	var h uint64
	see := func(st wire.ClusterStatus) {
		h = max(h, st.Self.CommitIndex)
		for _, m := range st.Members {
			if m.Status != nil {
				h = max(h, m.Status.CommitIndex)
			}
		}
	}
	if ro.view != nil {
		see(*ro.view)
	}
	for _, st := range ro.pods {
		see(st)
	}
	return h
}

// possiblyLost says, in words, which entries a recovery from a survivor
// whose log ends at lastIndex may lose, given the highest commit index
// seen before.
func possiblyLost(highest, lastIndex uint64) string {
	if highest > lastIndex {
		return fmt.Sprintf("entries after index %d that were committed on the lost servers may be lost: the operator saw index %d committed", lastIndex, highest)
	}
	return fmt.Sprintf("no entry the operator saw committed (up to index %d) is lost; entries after index %d committed on the lost servers after it last looked may be lost", highest, lastIndex)
}

// minUnreachable is the request's minUnreachable with its default.
func minUnreachable(req *kvv1.ForceNewCluster) time.Duration {
	if req.MinUnreachable == nil {
		return DefaultMinUnreachable
	}
	return req.MinUnreachable.Duration
}

// recoveryRequestID is the server-side request id of rec: one per request
// (the KVStore's uid and when the recovery started), the same on every
// retry of the call.
func recoveryRequestID(rec *kvv1.RecoveryStatus) string {
	return fmt.Sprintf("%s-%d", rec.RequestUID, rec.StartTime.Unix())
}
