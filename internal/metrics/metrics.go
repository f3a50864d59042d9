// Package metrics defines kvstore's Prometheus metrics on a registry of its
// own. Metric names are part of the public contract (dashboards and alerts
// use them) and documented in docs/api.md.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"kvstore.dev/kvstore/internal/store"
)

// Metrics holds the collectors. It is safe for concurrent use.
type Metrics struct {
	Registry *prometheus.Registry

	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	flush      prometheus.Histogram
	fsync      prometheus.Histogram
	flushKeys  prometheus.Histogram
	flushTotal prometheus.Counter

	// Created with the others so that they are never nil (a Raft snapshot
	// goroutine may observe before ObserveCluster runs); registered, and so
	// exported, once ObserveCluster runs (on every node).
	proposeLatency prometheus.Histogram
	snapshot       prometheus.Histogram
}

// New registers the HTTP and storage-engine metrics, the Go runtime and
// process collectors, and gauges read from status on every scrape.
func New(status func() store.Status) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kvstore_http_requests_total", Help: "HTTP requests by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kvstore_http_request_duration_seconds", Help: "HTTP request latency by route pattern and method.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 14),
		}, []string{"route", "method"}),
		flush: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "kvstore_store_flush_duration_seconds", Help: "Time to write buffered changes to the bbolt file, fsync included.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		fsync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "kvstore_store_fsync_duration_seconds", Help: "Time bbolt spent writing pages and fsyncing during one flush.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		flushKeys: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "kvstore_store_flush_keys", Help: "Keys written per flush.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 10),
		}),
		flushTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kvstore_store_flushes_total", Help: "Flushes of buffered changes to the bbolt file.",
		}),
		proposeLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "kvstore_cluster_propose_duration_seconds", Help: "Time from a write's proposal to its application on the leader (forwarding included on a follower).",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2, 16),
		}),
		snapshot: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "kvstore_cluster_snapshot_duration_seconds", Help: "Time to write one Raft snapshot of the store.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
	}
	gauge := func(name, help string, f func(store.Status) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(status()) })
	}
	reg.MustRegister(
		m.requests, m.latency, m.flush, m.fsync, m.flushKeys, m.flushTotal,
		gauge("kvstore_store_keys", "Keys stored, including expired keys not yet swept.", func(s store.Status) float64 { return float64(s.Keys) }),
		gauge("kvstore_store_db_size_bytes", "Size of the bbolt file.", func(s store.Status) float64 { return float64(s.DBSizeBytes) }),
		gauge("kvstore_store_revision", "Revision of the last committed change.", func(s store.Status) float64 { return float64(s.Revision) }),
		gauge("kvstore_watchers", "Open watch streams.", func(s store.Status) float64 { return float64(s.Watchers) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "kvstore_store_expired_keys_total", Help: "Keys removed because their TTL passed."},
			func() float64 { return float64(status().ExpiredTotal) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// ObserveRequest records one HTTP request.
func (m *Metrics) ObserveRequest(route, method string, code int, d time.Duration) {
	m.requests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
	m.latency.WithLabelValues(route, method).Observe(d.Seconds())
}

// ObserveFlush records one flush; pass it as store.Options.OnFlush.
func (m *Metrics) ObserveFlush(s store.FlushStats) {
	m.flushTotal.Inc()
	m.flushKeys.Observe(float64(s.Keys))
	m.flush.Observe(s.Duration.Seconds())
	m.fsync.Observe(s.Write.Seconds())
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}
