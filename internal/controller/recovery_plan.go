package controller

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kvv1 "kvstore.dev/kvstore/api/v1"
	"kvstore.dev/kvstore/wire"
)

// decideRecovery is the recovery decision (recovery.go), a pure function
// of kv (spec.recovery, status.recovery, status.members), what the
// servers report and now. It also keeps the tracking of status.recovery
// up to date, request or not: quorumLostSince and highestIndexSeen.
func decideRecovery(kv *kvv1.KVStore, ro recoveryObs, now time.Time) recoveryStep {
	prev := kv.Status.Recovery
	rec := &kvv1.RecoveryStatus{}
	if prev != nil {
		rec = prev.DeepCopy()
	}
	prevPhase := rec.Phase
	rec.HighestIndexSeen = max(rec.HighestIndexSeen, highestCommit(ro))
	lost, why := quorumState(kv, ro, kv.Status.Members)
	switch {
	case ro.view == nil && !ro.probed:
		// Nobody was asked (no cluster client, token or CA yet): what was
		// seen before stands.
	case !lost:
		rec.QuorumLostSince = nil
	case rec.QuorumLostSince == nil:
		rec.QuorumLostSince = stamp(now)
	}

	var s recoveryStep
	switch prevPhase {
	case kvv1.RecoveryRecovering:
		s = recovering(kv, ro, rec, now)
	case kvv1.RecoveryRejoining:
		s = rejoining(kv, ro, rec, now)
	default:
		s = request(kv, ro, rec, lost, why, now)
	}
	if s.status != nil && s.status.Phase != prevPhase {
		s.event = phaseEvent(s.status)
		s.warning = s.status.Phase != kvv1.RecoveryWaiting && s.status.Phase != kvv1.RecoverySucceeded
	} else if s.status != nil && s.status.Phase == kvv1.RecoveryRefused && prev != nil && prev.Message != s.status.Message {
		s.event, s.warning = phaseEvent(s.status), true
	}
	s.condition = recoveringCondition(kv, s.status)
	return s
}

// request decides for a KVStore with no recovery under way: nothing
// without a request (the record of a finished one is cleared), nothing
// again for a request carried out already, else check the request and
// start once the quorum has been lost for minUnreachable.
func request(kv *kvv1.KVStore, ro recoveryObs, rec *kvv1.RecoveryStatus, lost bool, why string, now time.Time) recoveryStep {
	var req *kvv1.ForceNewCluster
	if kv.Spec.Recovery != nil {
		req = kv.Spec.Recovery.ForceNewClusterFrom
	}
	if req == nil {
		tracking := &kvv1.RecoveryStatus{HighestIndexSeen: rec.HighestIndexSeen, QuorumLostSince: rec.QuorumLostSince}
		if rec.Phase == kvv1.RecoverySucceeded || rec.Phase == kvv1.RecoveryFailed {
			tracking.HighestIndexSeen = highestCommit(ro) // the lost cluster's indexes are not this one's
		}
		if replicas(kv) < 2 && ro.stsReplicas < 2 {
			return recoveryStep{} // a single server: nothing to track
		}
		return recoveryStep{status: tracking}
	}
	if rec.RequestUID == req.ConfirmUID && (rec.Phase == kvv1.RecoverySucceeded || rec.Phase == kvv1.RecoveryFailed) {
		return recoveryStep{status: rec} // carried out once: never again
	}
	rec.RequestUID = req.ConfirmUID
	rec.Survivor, rec.LastLogTerm, rec.LastLogIndex, rec.PossiblyLost, rec.StartTime, rec.CompletionTime = "", 0, 0, "", nil, nil
	refuse := func(format string, args ...any) recoveryStep {
		rec.Phase, rec.Message = kvv1.RecoveryRefused, fmt.Sprintf(format, args...)
		return recoveryStep{status: rec}
	}
	wait := func(after time.Duration, format string, args ...any) recoveryStep {
		rec.Phase, rec.Message = kvv1.RecoveryWaiting, fmt.Sprintf(format, args...)
		return recoveryStep{status: rec, requeue: after}
	}
	minWait := minUnreachable(req)
	switch {
	case req.ConfirmUID != string(kv.UID):
		return refuse("spec.recovery.forceNewClusterFrom.confirmUID %q is not this KVStore's metadata.uid: repeat it (kubectl get kvstore %s -o jsonpath='{.metadata.uid}') to confirm the request is for this store", req.ConfirmUID, kv.Name)
	case minWait < MinMinUnreachable:
		return refuse("spec.recovery.forceNewClusterFrom.minUnreachable is %v; it must be at least %v", minWait, MinMinUnreachable)
	case req.Member != "" && (ordinal(kv, req.Member) < 0 || ordinal(kv, req.Member) >= replicas(kv)):
		return refuse("spec.recovery.forceNewClusterFrom.member %q is not a server of this KVStore (%s to %s)", req.Member, podName(kv, 0), podName(kv, replicas(kv)-1))
	case replicas(kv) < 2:
		return refuse("spec.replicas is 1: a single server has no quorum to lose to others; spec.recovery.forceNewClusterFrom is for replicated stores")
	case !lost:
		return wait(0, "the quorum is not lost (%s); nothing is done unless a majority stays unreachable for %v", why, minWait)
	}
	at := rec.QuorumLostSince.Add(minWait)
	if now.Before(at) {
		return wait(at.Sub(now), "the quorum is lost since %s (%s); the recovery starts at %s if it stays lost",
			rec.QuorumLostSince.UTC().Format(time.RFC3339), why, at.UTC().Format(time.RFC3339))
	}
	survivor, ok, whyNot := pickSurvivor(kv, ro.pods, req.Member)
	if !ok {
		return wait(recoveryRetry, "the quorum is lost since %s (%s), but %s", rec.QuorumLostSince.UTC().Format(time.RFC3339), why, whyNot)
	}
	self := ro.pods[survivor].Self
	rec.Phase, rec.Survivor, rec.LastLogTerm, rec.LastLogIndex = kvv1.RecoveryRecovering, survivor, self.LastLogTerm, self.LastLogIndex
	rec.PossiblyLost, rec.StartTime = possiblyLost(rec.HighestIndexSeen, self.LastLogIndex), stamp(now)
	rec.Message = fmt.Sprintf("recovering from %s (last log term %d, index %d): it becomes the only server of a new cluster; %s",
		survivor, self.LastLogTerm, self.LastLogIndex, rec.PossiblyLost)
	// The survivor is recorded before it is called: the call is made from
	// the next reconcile on, once status.recovery says who it is, so that a
	// crash between the two never picks a second one.
	return recoveryStep{status: rec, requeue: time.Second}
}

// recovering waits for the survivor to lead a one-server cluster, calling
// its recover endpoint while it is still a member of the old one.
func recovering(kv *kvv1.KVStore, ro recoveryObs, rec *kvv1.RecoveryStatus, now time.Time) recoveryStep {
	sv, ok := survivorView(ro, rec.Survivor)
	if ok && sv.LeaderID == rec.Survivor && onlyVoter(sv, rec.Survivor) {
		rec.Phase = kvv1.RecoveryRejoining
		s := rejoining(kv, ro, rec, now)
		rec.Message = fmt.Sprintf("%s leads a one-server cluster; the other servers' pods and volumes (the lost cluster's data) are deleted so that they rejoin empty", rec.Survivor)
		return s
	}
	if rec.StartTime != nil && now.Sub(rec.StartTime.Time) >= recoveryTimeout {
		rec.Phase, rec.CompletionTime = kvv1.RecoveryFailed, stamp(now)
		rec.Message = fmt.Sprintf("%s did not come back as the leader of a one-server cluster within %v of the start; see its log and recover-done.json in its data directory", rec.Survivor, recoveryTimeout)
		return recoveryStep{status: rec}
	}
	s := recoveryStep{status: rec, requeue: recoveryRetry}
	if st, answered := ro.pods[rec.Survivor]; answered && st.LeaderID == "" && len(st.Members) >= 2 {
		s.recoverPod = rec.Survivor
		s.request = wire.RecoverRequest{NodeID: rec.Survivor, RequestID: recoveryRequestID(rec)}
	}
	return s
}

// rejoining deletes the other servers' old volumes (every reconcile: the
// deletion is of claims made before the recovery started only) until every
// server is a voter again.
func rejoining(kv *kvv1.KVStore, ro recoveryObs, rec *kvv1.RecoveryStatus, now time.Time) recoveryStep {
	s := recoveryStep{status: rec, requeue: recoveryRetry}
	if rec.StartTime != nil {
		s.cutoff = rec.StartTime.Time
	}
	for i := range max(replicas(kv), ro.stsReplicas) {
		if p := podName(kv, i); p != rec.Survivor {
			s.wipe = append(s.wipe, p)
		}
	}
	want := replicas(kv)
	voters := int32(0)
	if v, ok := survivorView(ro, rec.Survivor); ok && v.LeaderID != "" {
		for _, m := range v.Members {
			if o := ordinal(kv, m.ID); m.Suffrage == wire.SuffrageVoter && o >= 0 && o < want {
				voters++
			}
		}
	}
	if voters >= want {
		rec.Phase, rec.CompletionTime = kvv1.RecoverySucceeded, stamp(now)
		rec.Message = fmt.Sprintf("recovered from %s: %d of %d servers are voters again; %s", rec.Survivor, voters, want, rec.PossiblyLost)
		return recoveryStep{status: rec}
	}
	if voters > 0 {
		rec.Message = fmt.Sprintf("%s leads; %d of %d servers are voters, the others rejoin empty as non-voters and are promoted once caught up", rec.Survivor, voters, want)
	}
	return s
}

// survivorView is the cluster as the survivor reports it, or as any
// server reports it that names the survivor as the leader.
func survivorView(ro recoveryObs, survivor string) (wire.ClusterStatus, bool) {
	if st, ok := ro.pods[survivor]; ok {
		return st, true
	}
	if ro.view != nil && (ro.view.Self.ID == survivor || ro.view.LeaderID == survivor) {
		return *ro.view, true
	}
	return wire.ClusterStatus{}, false
}

// onlyVoter reports whether id is the one voter of st's configuration.
func onlyVoter(st wire.ClusterStatus, id string) bool {
	n := 0
	for _, m := range st.Members {
		if m.Suffrage == wire.SuffrageVoter {
			if m.ID != id {
				return false
			}
			n++
		}
	}
	return n == 1
}

// recoveringCondition is the Recovering condition for rec: True while a
// recovery runs, False with the phase as reason for a request that is
// not (or no longer) running, nil (removed) without a request.
func recoveringCondition(kv *kvv1.KVStore, rec *kvv1.RecoveryStatus) *metav1.Condition {
	if rec == nil || rec.Phase == "" {
		return nil
	}
	status := metav1.ConditionFalse
	if rec.Phase == kvv1.RecoveryRecovering || rec.Phase == kvv1.RecoveryRejoining {
		status = metav1.ConditionTrue
	}
	c := condition(kvv1.ConditionRecovering, status, string(rec.Phase), rec.Message, kv.Generation)
	return &c
}

// phaseEvent is the event of rec's new phase.
func phaseEvent(rec *kvv1.RecoveryStatus) *event {
	return &event{reason: "Recovery" + string(rec.Phase), action: "Recover", note: rec.Message}
}

// stamp is now as a status time (UTC, whole seconds).
func stamp(now time.Time) *metav1.Time {
	t := metav1.NewTime(now.UTC().Truncate(time.Second))
	return &t
}
