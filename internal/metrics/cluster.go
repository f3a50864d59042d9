package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ClusterSource is what the cluster metrics read on every scrape.
type ClusterSource interface {
	HasLeader() bool
	IsLeader() bool
	LeaderChanges() uint64
	Indexes() (commit, applied uint64)
}

func boolGauge(f func() bool) func() float64 {
	return func() float64 {
		if f() {
			return 1
		}
		return 0
	}
}

// ObserveCluster registers the replication metrics of the Raft node. Call
// it once; ObservePropose and ObserveSnapshot are safe before and after.
func (m *Metrics) ObserveCluster(c ClusterSource) {
	m.Registry.MustRegister(
		m.proposeLatency, m.snapshot,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kvstore_cluster_has_leader", Help: "1 when this node knows a leader."}, boolGauge(c.HasLeader)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kvstore_cluster_is_leader", Help: "1 when this node is the leader."}, boolGauge(c.IsLeader)),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "kvstore_cluster_leader_changes_total", Help: "Leader changes this node observed."},
			func() float64 { return float64(c.LeaderChanges()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kvstore_cluster_commit_index", Help: "The Raft commit index as this node knows it."},
			func() float64 { ci, _ := c.Indexes(); return float64(ci) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kvstore_cluster_applied_index", Help: "The last Raft index applied to this node's store."},
			func() float64 { _, ai := c.Indexes(); return float64(ai) }),
	)
}

// ObservePropose records one replicated write's latency.
func (m *Metrics) ObservePropose(d time.Duration) {
	m.proposeLatency.Observe(d.Seconds())
}

// ObserveSnapshot records one Raft snapshot's duration.
func (m *Metrics) ObserveSnapshot(d time.Duration) {
	m.snapshot.Observe(d.Seconds())
}
