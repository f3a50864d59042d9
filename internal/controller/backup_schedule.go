package controller

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kvv1 "kvstore.dev/kvstore/api/v1"
)

// scheduleParser is cron.ParseStandard's: five fields or a descriptor
// (@hourly, @every 6h), with an optional CRON_TZ= prefix.
var scheduleParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// scheduledNameLayout is the time part of a scheduled KVStoreBackup's
// name, <kv>-<yyyymmddhhmmss> (UTC).
const scheduledNameLayout = "20060102150405"

// scheduledName is the KVStoreBackup the schedule creates for at.
func scheduledName(kv *kvv1.KVStore, at time.Time) string {
	return kv.Name + "-" + at.UTC().Format(scheduledNameLayout)
}

// scheduledAt is the time in a scheduled backup's name (false: not one).
func scheduledAt(kv *kvv1.KVStore, name string) (time.Time, bool) {
	s, ok := strings.CutPrefix(name, kv.Name+"-")
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(scheduledNameLayout, s)
	return t, err == nil
}

// scheduleStep is what the schedule asks for now.
type scheduleStep struct {
	create bool      // create the backup of at
	at     time.Time // its scheduled time
	// after is when to look again (0: no requeue, there is no schedule).
	after time.Duration
}

// planSchedule decides, purely, whether a scheduled backup is due: the
// schedule's first time after the newest scheduled backup (else after
// the KVStore's creation) has come. A backup missed while the operator
// was down is taken once, for the latest time due, not once per missed
// time. Suspended or without a schedule: nothing.
func planSchedule(spec *kvv1.BackupSpec, created, newest, now time.Time) (scheduleStep, error) {
	if spec == nil || spec.Schedule == "" || spec.Suspend {
		return scheduleStep{}, nil
	}
	sched, err := scheduleParser.Parse(spec.Schedule)
	if err != nil {
		return scheduleStep{}, fmt.Errorf("spec.backup.schedule %q: %w", spec.Schedule, err)
	}
	from := created
	if newest.After(from) {
		from = newest
	}
	next := sched.Next(from)
	if next.IsZero() {
		return scheduleStep{}, nil // a time that never comes
	}
	if now.Before(next) {
		return scheduleStep{after: next.Sub(now)}, nil
	}
	due := next
	for i := 0; i < 100000; i++ {
		n := sched.Next(due)
		if n.IsZero() || n.After(now) {
			break
		}
		due = n
	}
	step := scheduleStep{create: true, at: due.UTC().Truncate(time.Second)}
	if n := sched.Next(due); !n.IsZero() {
		step.after = n.Sub(now)
	}
	return step, nil
}

// BackupScheduler creates the KVStoreBackups of KVStores'
// spec.backup.schedule, owned by the KVStore, labelled LabelKVStore and
// LabelScheduled; the BackupReconciler runs them.
type BackupScheduler struct {
	Client   client.Client
	Recorder events.EventRecorder
	Now      func() time.Time
}

// +kubebuilder:rbac:groups=kvstore.dev,resources=kvstorebackups,verbs=create

// Reconcile creates the KVStore's scheduled backup when one is due and
// requeues at the next time. It also keeps the KVStore's backup metrics
// (observeBackupMetrics), and deletes them when the KVStore is gone.
func (r *BackupScheduler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	kv := &kvv1.KVStore{}
	if err := r.Client.Get(ctx, req.NamespacedName, kv); err != nil {
		if apierrors.IsNotFound(err) {
			forgetBackupMetrics(req.Namespace, req.Name)
		}
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	now := time.Now()
	if r.Now != nil {
		now = r.Now()
	}
	if !kv.DeletionTimestamp.IsZero() {
		forgetBackupMetrics(kv.Namespace, kv.Name)
		return reconcile.Result{}, nil
	}
	observeBackupMetrics(kv, now)
	if kv.Spec.Backup == nil || kv.Spec.Backup.Schedule == "" {
		return reconcile.Result{}, nil
	}
	list := &kvv1.KVStoreBackupList{}
	if err := r.Client.List(ctx, list, client.InNamespace(kv.Namespace),
		client.MatchingLabels{kvv1.LabelKVStore: kv.Name, kvv1.LabelScheduled: "true"}); err != nil {
		return reconcile.Result{}, err
	}
	var newest time.Time
	for _, b := range list.Items {
		if t, ok := scheduledAt(kv, b.Name); ok && t.After(newest) {
			newest = t
		}
	}
	step, err := planSchedule(kv.Spec.Backup, kv.CreationTimestamp.Time, newest, now)
	if err != nil {
		if r.Recorder != nil {
			r.Recorder.Eventf(kv, nil, corev1.EventTypeWarning, "InvalidSchedule", "Schedule", "%s", err.Error())
		}
		return reconcile.Result{}, nil // the spec must change: its update is watched
	}
	if step.create {
		b := &kvv1.KVStoreBackup{
			ObjectMeta: metav1.ObjectMeta{Name: scheduledName(kv, step.at), Namespace: kv.Namespace,
				Labels: map[string]string{kvv1.LabelKVStore: kv.Name, kvv1.LabelScheduled: "true"}},
			Spec: kvv1.KVStoreBackupSpec{KVStoreName: kv.Name},
		}
		if err := controllerutil.SetControllerReference(kv, b, r.Client.Scheme()); err != nil {
			return reconcile.Result{}, err
		}
		if err := r.Client.Create(ctx, b); err != nil && !apierrors.IsAlreadyExists(err) {
			return reconcile.Result{}, fmt.Errorf("create scheduled backup %s: %w", b.Name, err)
		}
	}
	return reconcile.Result{RequeueAfter: step.after}, nil
}

// SetupWithManager registers the scheduler: it watches KVStores (their
// spec) and the KVStoreBackups they own.
func (r *BackupScheduler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("kvstorebackup-schedule").
		For(&kvv1.KVStore{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Owns(&kvv1.KVStoreBackup{}).
		Complete(r)
}
