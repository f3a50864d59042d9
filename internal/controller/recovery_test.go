package controller

import (
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	kvv1 "kvstore.dev/kvstore/api/v1"
	"kvstore.dev/kvstore/wire"
)

// recoveryT0 is the tests' clock.
var recoveryT0 = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

// recoveryKV is a three-server KVStore "kv" with uid "uid-1", with req as
// spec.recovery.forceNewClusterFrom and prev as status.recovery.
func recoveryKV(req *kvv1.ForceNewCluster, prev *kvv1.RecoveryStatus) *kvv1.KVStore {
	kv := &kvv1.KVStore{ObjectMeta: metav1.ObjectMeta{Name: "kv", Namespace: "ns", UID: types.UID("uid-1"), Generation: 4}}
	kv.Spec.Replicas = ptr(int32(3))
	if req != nil {
		kv.Spec.Recovery = &kvv1.RecoverySpec{ForceNewClusterFrom: req}
	}
	kv.Status.Recovery = prev
	kv.Status.Members = []kvv1.MemberStatus{{Name: "kv-0", Suffrage: "Voter"}, {Name: "kv-1", Suffrage: "Voter"}, {Name: "kv-2", Suffrage: "Voter"}}
	return kv
}

// podView is what pod answers: a member of the three-server configuration
// at log position (term, index), seeing leader ("" for none).
func podView(pod, leader string, term, index uint64) wire.ClusterStatus {
	st := wire.ClusterStatus{Enabled: true, LeaderID: leader,
		Self: wire.NodeStatus{ID: pod, LastLogTerm: term, LastLogIndex: index, CommitIndex: index - 1}}
	for _, m := range []string{"kv-0", "kv-1", "kv-2"} {
		st.Members = append(st.Members, wire.Member{ID: m, Suffrage: wire.SuffrageVoter, Leader: m == leader})
	}
	return st
}

// lostQuorum is an observation of a lost quorum: the pods named answer
// (at the given log positions) and none sees a leader; the client Service
// has no server to ask.
func lostQuorum(pods ...wire.ClusterStatus) recoveryObs {
	ro := recoveryObs{probed: true, pods: map[string]wire.ClusterStatus{}, stsReplicas: 3}
	for _, p := range pods {
		ro.pods[p.Self.ID] = p
	}
	return ro
}

func confirmed(mods ...func(*kvv1.ForceNewCluster)) *kvv1.ForceNewCluster {
	r := &kvv1.ForceNewCluster{ConfirmUID: "uid-1"}
	for _, m := range mods {
		m(r)
	}
	return r
}

func since(d time.Duration) *metav1.Time { return stamp(recoveryT0.Add(-d)) }

func TestDecideRecovery(t *testing.T) {
	healthy := recoveryObs{view: ptr(podView("kv-0", "kv-0", 3, 500)), stsReplicas: 3}
	lostLong := &kvv1.RecoveryStatus{QuorumLostSince: since(10 * time.Minute), HighestIndexSeen: 120}
	cases := map[string]struct {
		req  *kvv1.ForceNewCluster
		prev *kvv1.RecoveryStatus
		obs  recoveryObs
		// want: the phase, the survivor, the pod called, the pods wiped, a
		// part of the message.
		phase    kvv1.RecoveryPhase
		survivor string
		call     string
		wipe     []string
		message  string
	}{
		"no request, quorum lost for long: never acts": {
			prev: lostLong, obs: lostQuorum(podView("kv-1", "", 5, 100)),
		},
		"no request, healthy: tracks the commit index": {
			obs: healthy,
		},
		"wrong uid: refused": {
			req: confirmed(func(r *kvv1.ForceNewCluster) { r.ConfirmUID = "uid-2" }), prev: lostLong, obs: lostQuorum(podView("kv-1", "", 5, 100)),
			phase: kvv1.RecoveryRefused, message: "spec.recovery.forceNewClusterFrom.confirmUID",
		},
		"minUnreachable below 30s: refused": {
			req: confirmed(func(r *kvv1.ForceNewCluster) { r.MinUnreachable = &metav1.Duration{Duration: 10 * time.Second} }), prev: lostLong, obs: lostQuorum(podView("kv-1", "", 5, 100)),
			phase: kvv1.RecoveryRefused, message: "spec.recovery.forceNewClusterFrom.minUnreachable",
		},
		"unknown member: refused": {
			req: confirmed(func(r *kvv1.ForceNewCluster) { r.Member = "kv-7" }), prev: lostLong, obs: lostQuorum(podView("kv-1", "", 5, 100)),
			phase: kvv1.RecoveryRefused, message: "spec.recovery.forceNewClusterFrom.member",
		},
		"healthy cluster: waits, never acts": {
			req: confirmed(), prev: lostLong, obs: healthy,
			phase: kvv1.RecoveryWaiting, message: "not lost",
		},
		"a majority answers without a leader (an election): waits": {
			req: confirmed(), prev: lostLong, obs: lostQuorum(podView("kv-0", "", 5, 100), podView("kv-1", "", 5, 100)),
			phase: kvv1.RecoveryWaiting, message: "not lost",
		},
		"lost for less than minUnreachable: waits": {
			req: confirmed(), prev: &kvv1.RecoveryStatus{QuorumLostSince: since(4 * time.Minute)}, obs: lostQuorum(podView("kv-1", "", 5, 100)),
			phase: kvv1.RecoveryWaiting, message: "starts at 2026-12-03T12:01:00Z",
		},
		"the servers not asked: the loss seen before stands, nothing is done": {
			req: confirmed(), prev: lostLong, obs: recoveryObs{stsReplicas: 3},
			phase: kvv1.RecoveryWaiting, message: "not asked",
		},
		"lost just now: waits": {
			req: confirmed(), obs: lostQuorum(podView("kv-1", "", 5, 100)),
			phase: kvv1.RecoveryWaiting, message: "starts at 2026-12-03T12:05:00Z",
		},
		"lost for longer than a shorter minUnreachable: starts": {
			req: confirmed(func(r *kvv1.ForceNewCluster) { r.MinUnreachable = &metav1.Duration{Duration: time.Minute} }), prev: &kvv1.RecoveryStatus{QuorumLostSince: since(2 * time.Minute)},
			obs:   lostQuorum(podView("kv-1", "", 5, 100)),
			phase: kvv1.RecoveryRecovering, survivor: "kv-1",
		},
		"no server answers: waits": {
			req: confirmed(), prev: lostLong, obs: lostQuorum(),
			phase: kvv1.RecoveryWaiting, message: "no server answers",
		},
		"survivor by term first": {
			req: confirmed(), prev: lostLong, obs: lostQuorum(podView("kv-0", "", 5, 100)),
			phase: kvv1.RecoveryRecovering, survivor: "kv-0", message: "entries after index 100",
		},
		"survivor by (term, index) among the answering minority of five": {
			req: confirmed(), prev: lostLong,
			obs:   five(podView5("kv-3", 5, 100), podView5("kv-1", 6, 90)),
			phase: kvv1.RecoveryRecovering, survivor: "kv-1",
		},
		"survivor by index on the same term": {
			req: confirmed(), prev: lostLong,
			obs:   five(podView5("kv-3", 6, 100), podView5("kv-1", 6, 90)),
			phase: kvv1.RecoveryRecovering, survivor: "kv-3",
		},
		"the named member, though behind": {
			req: confirmed(func(r *kvv1.ForceNewCluster) { r.Member = "kv-1" }), prev: lostLong,
			obs:   five(podView5("kv-3", 6, 100), podView5("kv-1", 6, 90)),
			phase: kvv1.RecoveryRecovering, survivor: "kv-1",
		},
		"the named member does not answer: waits": {
			req: confirmed(func(r *kvv1.ForceNewCluster) { r.Member = "kv-2" }), prev: lostLong, obs: lostQuorum(podView("kv-1", "", 5, 100)),
			phase: kvv1.RecoveryWaiting, message: "kv-2 (spec.recovery.forceNewClusterFrom.member) does not answer",
		},
		"recovering: the recorded survivor is called": {
			req: confirmed(), prev: recordedAs(kvv1.RecoveryRecovering, "kv-1", time.Minute),
			obs:   lostQuorum(podView("kv-1", "", 5, 100), podView("kv-0", "", 9, 900)),
			phase: kvv1.RecoveryRecovering, survivor: "kv-1", call: "kv-1",
		},
		"recovering, the survivor restarting: waits": {
			req: confirmed(), prev: recordedAs(kvv1.RecoveryRecovering, "kv-1", time.Minute), obs: lostQuorum(),
			phase: kvv1.RecoveryRecovering, survivor: "kv-1",
		},
		"recovering, even if the request was removed": {
			prev: recordedAs(kvv1.RecoveryRecovering, "kv-1", time.Minute), obs: lostQuorum(podView("kv-1", "", 5, 100)),
			phase: kvv1.RecoveryRecovering, survivor: "kv-1", call: "kv-1",
		},
		"the survivor leads alone: the others are wiped": {
			req: confirmed(), prev: recordedAs(kvv1.RecoveryRecovering, "kv-1", time.Minute),
			obs:   recoveryObs{view: alone("kv-1"), stsReplicas: 3},
			phase: kvv1.RecoveryRejoining, survivor: "kv-1", wipe: []string{"kv-0", "kv-2"}, message: "kv-1 leads a one-server cluster",
		},
		"recovering too long: failed": {
			req: confirmed(), prev: recordedAs(kvv1.RecoveryRecovering, "kv-1", 11*time.Minute), obs: lostQuorum(podView("kv-1", "", 5, 100)),
			phase: kvv1.RecoveryFailed, survivor: "kv-1", message: "did not come back",
		},
		"rejoining: wipes until all vote": {
			req: confirmed(), prev: recordedAs(kvv1.RecoveryRejoining, "kv-1", 2*time.Minute),
			obs:   recoveryObs{view: withMembers(alone("kv-1"), "kv-0", wire.SuffrageNonvoter), stsReplicas: 3},
			phase: kvv1.RecoveryRejoining, survivor: "kv-1", wipe: []string{"kv-0", "kv-2"}, message: "1 of 3 servers are voters",
		},
		"rejoining: all vote, succeeded": {
			req: confirmed(), prev: recordedAs(kvv1.RecoveryRejoining, "kv-1", 2*time.Minute),
			obs:   recoveryObs{view: withMembers(withMembers(alone("kv-1"), "kv-0", wire.SuffrageVoter), "kv-2", wire.SuffrageVoter), stsReplicas: 3},
			phase: kvv1.RecoverySucceeded, survivor: "kv-1", message: "3 of 3 servers are voters again",
		},
		"succeeded and still requested, quorum lost again: nothing again": {
			req: confirmed(), prev: recordedAs(kvv1.RecoverySucceeded, "kv-1", time.Hour), obs: lostQuorum(podView("kv-0", "", 9, 900)),
			phase: kvv1.RecoverySucceeded, survivor: "kv-1",
		},
		"failed and still requested: nothing again": {
			req: confirmed(), prev: recordedAs(kvv1.RecoveryFailed, "kv-1", time.Hour), obs: lostQuorum(podView("kv-0", "", 9, 900)),
			phase: kvv1.RecoveryFailed, survivor: "kv-1",
		},
		"succeeded, request removed: the record is cleared": {
			prev: recordedAs(kvv1.RecoverySucceeded, "kv-1", time.Hour), obs: healthy,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			kv := recoveryKV(tc.req, tc.prev)
			if len(tc.obs.pods) > 3 || tc.obs.stsReplicas == 5 {
				kv.Spec.Replicas = ptr(int32(5))
				kv.Status.Members = nil
			}
			s := decideRecovery(kv, tc.obs, recoveryT0)
			var got kvv1.RecoveryStatus
			if s.status != nil {
				got = *s.status
			}
			if got.Phase != tc.phase || got.Survivor != tc.survivor {
				t.Errorf("phase %q survivor %q, want %q %q (message %q)", got.Phase, got.Survivor, tc.phase, tc.survivor, got.Message)
			}
			if !strings.Contains(got.Message, tc.message) {
				t.Errorf("message %q, want it to contain %q", got.Message, tc.message)
			}
			if s.recoverPod != tc.call {
				t.Errorf("recover call to %q, want %q", s.recoverPod, tc.call)
			}
			if s.recoverPod != "" && (s.request.NodeID != s.recoverPod || s.request.RequestID != recoveryRequestID(tc.prev)) {
				t.Errorf("request %+v, want node %s and the recorded request's id", s.request, s.recoverPod)
			}
			if !slices.Equal(tc.wipe, s.wipe) {
				t.Errorf("wipe (-want +got):\n- %v\n+ %v", tc.wipe, s.wipe)
			}
			if len(s.wipe) > 0 && !s.cutoff.Equal(tc.prev.StartTime.Time) {
				t.Errorf("wipe cutoff %v, want the recovery's start %v", s.cutoff, tc.prev.StartTime)
			}
			switch c := s.condition; {
			case tc.phase == "" && c != nil:
				t.Errorf("condition %+v without a request", c)
			case tc.phase != "" && (c == nil || c.Reason != string(tc.phase) ||
				(c.Status == metav1.ConditionTrue) != (tc.phase == kvv1.RecoveryRecovering || tc.phase == kvv1.RecoveryRejoining)):
				t.Errorf("condition %+v for phase %s", c, tc.phase)
			}
			if tc.phase == kvv1.RecoveryRecovering && tc.prev != nil && tc.prev.Phase == "" {
				// Started now: recorded, not called yet.
				self := tc.obs.pods[tc.survivor].Self
				if got.LastLogTerm != self.LastLogTerm || got.LastLogIndex != self.LastLogIndex || got.StartTime == nil || got.PossiblyLost == "" || got.RequestUID != "uid-1" {
					t.Errorf("started recovery recorded as %+v, want the survivor's log position %d/%d, a start, what may be lost", got, self.LastLogTerm, self.LastLogIndex)
				}
				if s.event == nil || !s.warning {
					t.Errorf("no warning event for the start: %+v", s.event)
				}
			}
		})
	}
}

// TestDecideRecoveryTracks: without a request, the status keeps the
// highest commit index seen and when the quorum was first seen lost, and
// nothing else.
func TestDecideRecoveryTracks(t *testing.T) {
	kv := recoveryKV(nil, &kvv1.RecoveryStatus{HighestIndexSeen: 50})
	s := decideRecovery(kv, recoveryObs{view: ptr(podView("kv-0", "kv-0", 3, 500)), stsReplicas: 3}, recoveryT0)
	if want := (&kvv1.RecoveryStatus{HighestIndexSeen: 499}); !equality.Semantic.DeepEqual(want, s.status) {
		t.Errorf("healthy (-want +got):\n- %+v\n+ %+v", want, s.status)
	}
	kv.Status.Recovery = s.status
	s = decideRecovery(kv, lostQuorum(podView("kv-2", "", 3, 400)), recoveryT0)
	if want := (&kvv1.RecoveryStatus{HighestIndexSeen: 499, QuorumLostSince: stamp(recoveryT0)}); !equality.Semantic.DeepEqual(want, s.status) {
		t.Errorf("lost (-want +got):\n- %+v\n+ %+v", want, s.status)
	}
	kv.Status.Recovery = s.status
	s = decideRecovery(kv, lostQuorum(podView("kv-2", "", 3, 400)), recoveryT0.Add(time.Hour))
	if s.status.QuorumLostSince == nil || !s.status.QuorumLostSince.Equal(stamp(recoveryT0)) || s.recoverPod != "" || s.wipe != nil {
		t.Errorf("still lost an hour later: %+v, call %q, wipe %v; want the first time kept and nothing done", s.status, s.recoverPod, s.wipe)
	}
	kv.Status.Recovery = s.status
	s = decideRecovery(kv, recoveryObs{stsReplicas: 3}, recoveryT0.Add(90*time.Minute))
	if s.status.QuorumLostSince == nil || !s.status.QuorumLostSince.Equal(stamp(recoveryT0)) {
		t.Errorf("servers not asked: %+v, want the loss seen before kept", s.status)
	}
	kv.Status.Recovery = s.status
	s = decideRecovery(kv, recoveryObs{view: ptr(podView("kv-0", "kv-0", 4, 600)), stsReplicas: 3}, recoveryT0.Add(2*time.Hour))
	if want := (&kvv1.RecoveryStatus{HighestIndexSeen: 599}); !equality.Semantic.DeepEqual(want, s.status) {
		t.Errorf("healthy again (-want +got):\n- %+v\n+ %+v", want, s.status)
	}
}

func TestPossiblyLost(t *testing.T) {
	if got := possiblyLost(120, 100); !strings.Contains(got, "entries after index 100 that were committed on the lost servers may be lost") {
		t.Errorf("possiblyLost(120, 100) = %q", got)
	}
	if got := possiblyLost(90, 100); strings.Contains(got, "after index 100 that were") {
		t.Errorf("possiblyLost(90, 100) = %q: nothing seen is lost", got)
	}
}

// recordedAs is a recovery record in phase, from survivor, started ago
// before recoveryT0.
func recordedAs(phase kvv1.RecoveryPhase, survivor string, ago time.Duration) *kvv1.RecoveryStatus {
	return &kvv1.RecoveryStatus{Phase: phase, RequestUID: "uid-1", Survivor: survivor, LastLogTerm: 5, LastLogIndex: 100,
		HighestIndexSeen: 120, PossiblyLost: possiblyLost(120, 100), StartTime: since(ago), QuorumLostSince: since(ago + 5*time.Minute)}
}

// alone is survivor's view once it leads a one-server cluster.
func alone(survivor string) *wire.ClusterStatus {
	return &wire.ClusterStatus{Enabled: true, LeaderID: survivor, Self: wire.NodeStatus{ID: survivor, CommitIndex: 101},
		Members: []wire.Member{{ID: survivor, Suffrage: wire.SuffrageVoter, Leader: true}}}
}

func withMembers(v *wire.ClusterStatus, id, suffrage string) *wire.ClusterStatus {
	c := *v
	c.Members = append(append([]wire.Member(nil), v.Members...), wire.Member{ID: id, Suffrage: suffrage})
	return &c
}

// five is a lost quorum of a five-server KVStore: the pods given answer.
func five(pods ...wire.ClusterStatus) recoveryObs {
	ro := lostQuorum(pods...)
	ro.stsReplicas = 5
	return ro
}

// podView5 is pod's answer as a member of a five-server configuration
// without a leader.
func podView5(pod string, term, index uint64) wire.ClusterStatus {
	st := podView(pod, "", term, index)
	st.Members = append(st.Members, wire.Member{ID: "kv-3", Suffrage: wire.SuffrageVoter}, wire.Member{ID: "kv-4", Suffrage: wire.SuffrageVoter})
	return st
}
