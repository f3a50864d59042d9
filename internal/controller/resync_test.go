package controller

import (
	"testing"
	"time"

	"kvstore.dev/kvstore/wire"
)

// TestServersResync: a KVStore is looked at again at least every
// statusRefresh, and every leaderRetry while its servers name no leader,
// so status.leader follows elections, which make no Kubernetes event.
func TestServersResync(t *testing.T) {
	led := &wire.ClusterStatus{LeaderID: "kv-0"}
	tests := []struct {
		name  string
		after time.Duration
		sts   bool
		view  *wire.ClusterStatus
		want  time.Duration
	}{
		{"steady: the periodic refresh", 0, true, led, statusRefresh},
		{"a sooner deadline stays", time.Second, true, led, time.Second},
		{"a later deadline is cut", time.Hour, true, led, statusRefresh},
		{"no leader named", 0, true, &wire.ClusterStatus{}, leaderRetry},
		{"servers did not answer", time.Hour, true, nil, leaderRetry},
		{"no StatefulSet yet: nothing to ask", 0, false, nil, statusRefresh},
		{"membership retry is sooner still", membershipRetry, true, nil, membershipRetry},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := serversResync(tc.after, tc.sts, tc.view); got != tc.want {
				t.Errorf("serversResync(%s, %v, %+v) = %s, want %s", tc.after, tc.sts, tc.view, got, tc.want)
			}
		})
	}
}
