//go:build kube

package kube

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"kvstore.dev/kvstore/test/harness"
	"kvstore.dev/kvstore/test/harness/kube"
)

// failoverLimit is how soon after the leader's pod is deleted the servers
// must name a new leader.
const failoverLimit = 5 * time.Second

// testLeaderDeleted: the leader's pod is deleted under continuous writes
// through the client Service. The servers name a new leader within
// failoverLimit (measured from the delete, through the client Service);
// the test also logs when status.leader changed and the longest pause
// between acknowledged writes. The pod comes back as a voter, and no
// acknowledged write is lost.
func testLeaderDeleted(t *testing.T, k *kube.Cluster) {
	s := newStore(t, k, "failover", 3, small)
	w := startWriters(t, s)
	w.WaitMore(t, 50, kube.ReadyTimeout)
	st, err := s.Client.ClusterStatus()
	if err != nil || st.LeaderID == "" {
		t.Fatalf("no leader before the delete: %v %+v", err, st)
	}
	old := st.LeaderID

	oldLog := k.FollowLogs(t, s.Namespace, old)
	deleted := time.Now()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: old}}
	if err := k.Client(t).Delete(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	var elected, inStatus time.Duration
	var lastStatusCheck time.Time
	_, err = harness.Poll(kube.ReadyTimeout, func() error {
		if elected == 0 {
			if st, err := s.Client.WithTimeout(time.Second).ClusterStatus(); err == nil && st.LeaderID != "" && st.LeaderID != old {
				elected = time.Since(deleted)
			}
		}
		if inStatus == 0 && time.Since(lastStatusCheck) > 250*time.Millisecond {
			lastStatusCheck = time.Now()
			if l := s.Get(t).Status.Leader; l != "" && l != old {
				inStatus = time.Since(deleted)
			}
		}
		if elected == 0 || inStatus == 0 {
			return errorf("leader %s deleted %s ago: servers' new leader after %s, status' after %s", old, time.Since(deleted).Round(time.Millisecond), elected, inStatus)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	gap := longestGap(w.Acks(), deleted.Add(-time.Second))
	t.Logf("leader %s deleted: the servers named a new leader after %s, status.leader after %s; longest pause between acknowledged writes %s",
		old, elected.Round(time.Millisecond), inStatus.Round(time.Millisecond), gap.Round(time.Millisecond))
	// The old leader's own account: when SIGTERM came (the kubelet's
	// delay) and how its hand-off went.
	_, _ = harness.Poll(10*time.Second, func() error {
		if l := oldLog(); !strings.Contains(l, "leadership transferred") && !strings.Contains(l, "hand-off failed") {
			return errorf("no hand-off logged yet")
		}
		return nil
	})
	for _, line := range strings.Split(oldLog(), "\n") {
		if strings.Contains(line, "shutting down") || strings.Contains(line, "leadership transferred") || strings.Contains(line, "hand-off failed") {
			t.Logf("%s (deleted at %s): %s", old, deleted.UTC().Format("15:04:05.000"), line)
		}
	}
	if elected > failoverLimit {
		t.Errorf("a new leader %s after the delete, want within %s", elected.Round(time.Millisecond), failoverLimit)
	}

	s.WaitReady(t, 3)
	w.WaitMore(t, 50, kube.ReadyTimeout)
	stopAndVerify(t, s, w)
}

// longestGap is the longest time between two acknowledged writes from
// since on (acks are in order of acknowledgement).
func longestGap(acks []harness.Ack, since time.Time) time.Duration {
	var gap time.Duration
	prev := since
	for _, a := range acks {
		if a.At.Before(since) {
			continue
		}
		gap = max(gap, a.At.Sub(prev))
		prev = a.At
	}
	return gap
}

// testNodeRestart: the node's kubelet and containerd are stopped, every
// pod's processes killed (as in a reboot), and both started again: the
// pods come back with new containers, the store re-forms and its data is
// back. It disturbs every pod of the node, so it runs alone (Disrupt).
func testNodeRestart(t *testing.T, k *kube.Cluster) {
	k.Disrupt(t)
	s := newStore(t, k, "restart", 3, small)
	want := putAll(t, s, "before/", 20)
	before := map[string]string{}
	for _, p := range s.Pods(t) {
		before[p.Name] = p.Status.ContainerStatuses[0].ContainerID
	}

	start := time.Now()
	k.RestartNode(t)
	t.Logf("kubelet and containerd restarted in %s", time.Since(start).Round(time.Second))
	s.WaitReady(t, 3)
	t.Logf("store ready again %s after the restart began", time.Since(start).Round(time.Second))
	for _, p := range s.Pods(t) {
		if id := p.Status.ContainerStatuses[0].ContainerID; id == before[p.Name] {
			t.Errorf("pod %s runs the same container %s as before the restart: the restart did not reach it", p.Name, id)
		}
	}
	checkAll(t, s, want)
	putAll(t, s, "after/", 5)
}
