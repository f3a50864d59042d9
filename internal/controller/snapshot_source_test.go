package controller

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kvv1 "kvstore.dev/kvstore/api/v1"
	"kvstore.dev/kvstore/wire"
)

// TestSnapshotMemberWaitsForALeader: a backup asked for during an
// election (the client Service answers with no leader, or not at all)
// waits for one rather than failing at once; with never a leader it fails
// when its context ends, saying why.
func TestSnapshotMemberWaitsForALeader(t *testing.T) {
	healthy := wire.ClusterStatus{Enabled: true, LeaderID: "kv-0", Members: []wire.Member{
		{ID: "kv-0", Status: &wire.NodeStatus{State: wire.StateLeader, CommitIndex: 10, AppliedIndex: 10}},
		{ID: "kv-1", Status: &wire.NodeStatus{State: wire.StateFollower, CommitIndex: 10, AppliedIndex: 10}},
	}}
	tests := []struct {
		name       string
		badAnswers int64 // answers before the healthy one: no leader, then 503s
		timeout    time.Duration
		want       string // the pod, or a part of the error
	}{
		{"leader at once", 0, time.Minute, "kv-1"},
		{"after an election", 4, time.Minute, "kv-1"},
		{"never a leader", 1 << 40, 200 * time.Millisecond, "gave up after"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := calls.Add(1)
				switch {
				case n > tt.badAnswers:
					_ = json.NewEncoder(w).Encode(healthy)
				case n%2 == 0:
					http.Error(w, "no endpoints", http.StatusServiceUnavailable)
				default:
					_ = json.NewEncoder(w).Encode(wire.ClusterStatus{Enabled: true})
				}
			}))
			defer srv.Close()
			kv := &kvv1.KVStore{ObjectMeta: metav1.ObjectMeta{Name: "kv", Namespace: "ns"}}
			kv.Spec.TLS.Pods = "Disabled"
			s := &HTTPSnapshotSource{ServiceURL: func(*kvv1.KVStore) string { return srv.URL }, RetryEvery: time.Millisecond}
			ctx, cancel := context.WithTimeout(context.Background(), tt.timeout)
			defer cancel()
			pod, err := s.Member(ctx, kv, ServerAccess{Token: "t"})
			got := pod
			if err != nil {
				got = err.Error()
			}
			if !strings.Contains(got, tt.want) {
				t.Errorf("Member = %q, %v; want %q", pod, err, tt.want)
			}
		})
	}
}
