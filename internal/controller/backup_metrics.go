package controller

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	kvv1 "kvstore.dev/kvstore/api/v1"
	"kvstore.dev/kvstore/internal/backup"
)

// The schedule's metrics, beside backup_controller.go's: the alert rule
// (config/prometheus/backup-rules.yaml) fires when
// time() - (last success, else the schedule's start) > 2 * period.
var (
	backupSchedulePeriod = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kvstore_backup_schedule_period_seconds",
		Help: "Time between consecutive scheduled backups of the KVStore (the longest interval of spec.backup.schedule in a week); absent without a schedule, with an invalid one or while suspended.",
	}, []string{"namespace", "kvstore"})
	backupScheduleStart = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kvstore_backup_schedule_start_timestamp_seconds",
		Help: "When the KVStore's schedule counts from, its creation (Unix time): the alert's reference while no backup has succeeded; absent when the period is.",
	}, []string{"namespace", "kvstore"})
)

func init() {
	metrics.Registry.MustRegister(backupSchedulePeriod, backupScheduleStart)
}

// observeBackupMetrics sets kv's backup gauges from the object, so that
// an operator that restarted reports what it did before: the last
// success from status.lastBackup.completionTime, and the schedule's
// period and start while the schedule is active (removed otherwise).
// The BackupScheduler calls it on every reconcile of a KVStore.
func observeBackupMetrics(kv *kvv1.KVStore, now time.Time) {
	setLastSuccess(kv)
	ns, name := kv.Namespace, kv.Name
	var period time.Duration
	if s := kv.Spec.Backup; s != nil && s.Schedule != "" && !s.Suspend {
		if sched, err := scheduleParser.Parse(s.Schedule); err == nil {
			period = backup.SchedulePeriod(sched, now)
		}
	}
	if period <= 0 {
		backupSchedulePeriod.DeleteLabelValues(ns, name)
		backupScheduleStart.DeleteLabelValues(ns, name)
		return
	}
	backupSchedulePeriod.WithLabelValues(ns, name).Set(period.Seconds())
	backupScheduleStart.WithLabelValues(ns, name).Set(float64(kv.CreationTimestamp.Unix()))
}

// setLastSuccess sets kvstore_backup_last_success_timestamp_seconds from
// kv's status.lastBackup (nothing when it has none).
func setLastSuccess(kv *kvv1.KVStore) {
	if lb := kv.Status.LastBackup; lb != nil && lb.CompletionTime != nil {
		backupLastSuccess.WithLabelValues(kv.Namespace, kv.Name).Set(float64(lb.CompletionTime.Unix()))
	}
}

// forgetBackupMetrics deletes every backup series of the KVStore
// namespace/name: it is gone.
func forgetBackupMetrics(namespace, name string) {
	for _, v := range []*prometheus.MetricVec{backupLastSuccess.MetricVec, backupLastFailure.MetricVec,
		backupSuccesses.MetricVec, backupFailures.MetricVec, backupSchedulePeriod.MetricVec, backupScheduleStart.MetricVec} {
		v.DeleteLabelValues(namespace, name)
	}
}
