package metrics

import (
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"kvstore.dev/kvstore/internal/store"
)

type fakeCluster struct{}

func (fakeCluster) HasLeader() bool                   { return true }
func (fakeCluster) IsLeader() bool                    { return true }
func (fakeCluster) LeaderChanges() uint64             { return 1 }
func (fakeCluster) Indexes() (commit, applied uint64) { return 2, 2 }

// TestObserveSnapshotRacesObserveCluster: Raft's snapshot goroutine may
// report a snapshot while the server is still registering the cluster
// metrics. Every observation must count (none lost to a not-yet-created
// histogram), and the race detector must find nothing.
func TestObserveSnapshotRacesObserveCluster(t *testing.T) {
	const n = 200
	m := New(func() store.Status { return store.Status{} })
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range n {
			m.ObserveSnapshot(time.Millisecond)
			m.ObservePropose(time.Millisecond)
		}
	}()
	m.ObserveCluster(fakeCluster{})
	<-done

	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	want := map[string]uint64{"kvstore_cluster_snapshot_duration_seconds": n, "kvstore_cluster_propose_duration_seconds": n}
	got := map[string]uint64{}
	for _, f := range families {
		if _, ok := want[f.GetName()]; ok && f.GetType() == dto.MetricType_HISTOGRAM {
			got[f.GetName()] = f.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: %d samples, want %d", name, got[name], w)
		}
	}
}
