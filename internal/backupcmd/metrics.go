package backupcmd

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the backup process's Prometheus metrics, on their own
// registry.
type Metrics struct {
	Registry      *prometheus.Registry
	LastSuccess   prometheus.Gauge
	LastFailure   prometheus.Gauge
	LastSize      prometheus.Gauge
	LastDuration  prometheus.Gauge
	Successes     prometheus.Counter
	Failures      prometheus.Counter
	PruneFailures prometheus.Counter
	Pruned        prometheus.Counter
	Suspended     prometheus.Gauge
	// SchedulePeriod and ScheduleStart (no labels) are exported only once
	// set: by Schedule, unless suspended. The alert rule
	// (config/prometheus/backup-rules.yaml) needs both.
	SchedulePeriod *prometheus.GaugeVec
	ScheduleStart  *prometheus.GaugeVec
}

// NewMetrics registers the metrics (and the Go and process collectors) on
// a new registry.
func NewMetrics() *Metrics {
	g := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	}
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	m := &Metrics{
		Registry:      prometheus.NewRegistry(),
		LastSuccess:   g("kvstore_backup_last_success_timestamp_seconds", "When the last successful backup completed (Unix time; at start, the newest backup in the destination); 0 if none."),
		LastFailure:   g("kvstore_backup_last_failure_timestamp_seconds", "When the last backup failed (Unix time); 0 if none has."),
		LastSize:      g("kvstore_backup_last_size_bytes", "Size of the last successful backup."),
		LastDuration:  g("kvstore_backup_last_duration_seconds", "How long the last successful backup took."),
		Successes:     c("kvstore_backup_successes_total", "Backups that completed."),
		Failures:      c("kvstore_backup_failures_total", "Backups that failed."),
		PruneFailures: c("kvstore_backup_prune_failures_total", "Retention runs that failed to list or delete a backup."),
		Pruned:        c("kvstore_backup_pruned_total", "Backups deleted by retention."),
		Suspended:     g("kvstore_backup_suspended", "1 while the schedule is suspended."),
		SchedulePeriod: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kvstore_backup_schedule_period_seconds",
			Help: "Time between consecutive scheduled backups (the schedule's longest interval in a week); absent while suspended."}, nil),
		ScheduleStart: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kvstore_backup_schedule_start_timestamp_seconds",
			Help: "When this process started its schedule (Unix time): the alert's reference while no backup has succeeded; absent while suspended."}, nil),
	}
	m.Registry.MustRegister(m.LastSuccess, m.LastFailure, m.LastSize, m.LastDuration,
		m.Successes, m.Failures, m.PruneFailures, m.Pruned, m.Suspended, m.SchedulePeriod, m.ScheduleStart,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
