//go:build kube

package kube

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kvv1 "kvstore.dev/kvstore/api/v1"
	"kvstore.dev/kvstore/test/harness/kube"
)

// testRecovery: two of three servers, the first among them, lose their
// volumes for good (their claims and pods deleted: they come back empty
// and cannot join a cluster without a quorum; recover-0, the bootstrap
// node, must not start one of its own either, since the cluster formed
// before). Nothing happens until the user asks; with
// spec.recovery.forceNewClusterFrom confirmed by the KVStore's uid, the
// operator recovers the survivor as a one-server cluster, the other two
// rejoin empty, and every key written before is there.
func testRecovery(t *testing.T, k *kube.Cluster) {
	s := newStore(t, k, "recover", 3, small)
	want := putAll(t, s, "kept/", 30)
	ctx := context.Background()
	c := k.Client(t)
	for _, i := range []int{0, 1} {
		name := fmt.Sprintf("data-recover-%d", i)
		if err := c.Delete(ctx, &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: name}}); err != nil {
			t.Fatal(err)
		}
		if err := c.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: fmt.Sprintf("recover-%d", i)}}, client.GracePeriodSeconds(0)); err != nil {
			t.Fatal(err)
		}
	}
	t.Log("deleted the claims and pods of recover-0 and recover-1")
	kube.Eventually(t, "status.recovery.quorumLostSince", 5*time.Minute, func() error {
		if r := s.Get(t).Status.Recovery; r == nil || r.QuorumLostSince == nil {
			return fmt.Errorf("status.recovery %+v", r)
		}
		return nil
	})
	if r := s.Get(t).Status.Recovery; r.Phase != "" {
		t.Fatalf("without a request the operator did %+v", r)
	}
	cm := &corev1.ConfigMap{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: "recover-config"}, cm); err != nil || cm.Data["bootstrap-allowed"] != "false" {
		t.Errorf("ConfigMap recover-config bootstrap-allowed = %q (%v), want \"false\" once the cluster formed", cm.Data["bootstrap-allowed"], err)
	}
	uid := string(s.Get(t).UID)
	start := time.Now()
	s.Apply(t, 3, small+"recovery:\n  forceNewClusterFrom: {confirmUID: "+uid+", minUnreachable: 30s}\n")
	var rec *kvv1.RecoveryStatus
	kube.Eventually(t, "the recovery Succeeded", 10*time.Minute, func() error {
		rec = s.Get(t).Status.Recovery
		if rec == nil || rec.Phase != kvv1.RecoverySucceeded {
			return fmt.Errorf("status.recovery %+v", rec)
		}
		return nil
	})
	t.Logf("recovered from %s (term %d, index %d) in %s; %s", rec.Survivor, rec.LastLogTerm, rec.LastLogIndex,
		time.Since(start).Round(time.Second), rec.PossiblyLost)
	if rec.Survivor != "recover-2" {
		t.Errorf("survivor %q, want recover-2, the only server with its data", rec.Survivor)
	}
	s.WaitReady(t, 3)
	checkAll(t, s, want)
	putAll(t, s, "after/", 5)
}
