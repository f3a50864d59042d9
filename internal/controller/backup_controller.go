package controller

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kvv1 "kvstore.dev/kvstore/api/v1"
	"kvstore.dev/kvstore/internal/backup"
)

// Backup metrics, on the operator's registry.
var (
	backupLastSuccess = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kvstore_backup_last_success_timestamp_seconds",
		Help: "When the KVStore's last successful backup completed (Unix time): its status.lastBackup.completionTime, so an operator restart keeps it.",
	}, []string{"namespace", "kvstore"})
	backupLastFailure = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kvstore_backup_last_failure_timestamp_seconds",
		Help: "When the KVStore's last failed backup failed (Unix time).",
	}, []string{"namespace", "kvstore"})
	backupSuccesses = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kvstore_backup_successes_total",
		Help: "Backups of the KVStore that succeeded.",
	}, []string{"namespace", "kvstore"})
	backupFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kvstore_backup_failures_total",
		Help: "Backups of the KVStore that failed.",
	}, []string{"namespace", "kvstore"})
)

func init() {
	metrics.Registry.MustRegister(backupLastSuccess, backupLastFailure, backupSuccesses, backupFailures)
}

// DefaultBackupTimeout bounds one backup when spec.backup.timeout is unset.
const DefaultBackupTimeout = time.Hour

// SnapshotSource streams a snapshot of a KVStore's data from one of its
// servers. It is a BackupReconciler field so tests can point it at server
// processes standing in for pods.
type SnapshotSource interface {
	// Snapshot opens a snapshot stream; source names the server (pod) it
	// comes from. The caller reads the body to its end and closes it.
	Snapshot(ctx context.Context, kv *kvv1.KVStore, access ServerAccess) (body io.ReadCloser, info backup.Info, source string, err error)
	// Member is the pod a snapshot would come from (pickSnapshotMember),
	// for a backup Job to stream from.
	Member(ctx context.Context, kv *kvv1.KVStore, access ServerAccess) (pod string, err error)
}

// BackupReconciler runs KVStoreBackups: each is taken once, streamed from
// a caught-up server straight into its destination (S3, by the operator),
// or by a Job it creates (a PersistentVolumeClaim, which the Job mounts),
// and its outcome recorded on it and on its KVStore's status.
type BackupReconciler struct {
	// Client reads from the manager's cache and writes to the API server.
	Client client.Client
	// APIReader reads Secrets, which the cache does not all hold, a Job
	// just created, and the backup Jobs' pods, which it does not hold at
	// all; nil: Client (whose cache would then watch every pod).
	APIReader client.Reader
	// Recorder records events on KVStoreBackups and KVStores.
	Recorder events.EventRecorder
	// Source takes the snapshots (and picks the pod a backup Job streams
	// from).
	Source SnapshotSource
	// Options build the backup Jobs (the default image, the cluster
	// domain), as the KVStore reconciler's build the StatefulSet.
	Options BuildOptions
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// +kubebuilder:rbac:groups=kvstore.dev,resources=kvstorebackups,verbs=get;list;watch;patch;delete
// +kubebuilder:rbac:groups=kvstore.dev,resources=kvstorebackups/status,verbs=patch
// +kubebuilder:rbac:groups=kvstore.dev,resources=kvstores,verbs=get
// +kubebuilder:rbac:groups=kvstore.dev,resources=kvstorebackups/finalizers,verbs=update
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=create;get;list;watch
// +kubebuilder:rbac:groups="",resources=pods,verbs=list

// Reconcile runs one KVStoreBackup: observe (the backup, its KVStore, its
// Job), plan (planBackup), act (mark Running, then stream and record the
// outcome, or create the Job; record a finished Job's outcome).
func (r *BackupReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	b := &kvv1.KVStoreBackup{}
	if err := r.Client.Get(ctx, req.NamespacedName, b); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if !b.DeletionTimestamp.IsZero() {
		return reconcile.Result{}, nil
	}
	if b.Status.Phase == kvv1.BackupRunning {
		// The cache may not have seen this controller's own outcome yet
		// (the reconcile the Running patch queued runs right after the
		// backup finished): only the API server's copy says whether the
		// backup really was left Running.
		if err := r.apiReader().Get(ctx, req.NamespacedName, b); err != nil {
			return reconcile.Result{}, client.IgnoreNotFound(err)
		}
	}
	var kv *kvv1.KVStore
	if b.Status.Phase != kvv1.BackupSucceeded && b.Status.Phase != kvv1.BackupFailed {
		kv = &kvv1.KVStore{}
		key := types.NamespacedName{Namespace: b.Namespace, Name: b.Spec.KVStoreName}
		err := r.Client.Get(ctx, key, kv)
		if apierrors.IsNotFound(err) {
			// A KVStore created just before its backup may not be in the
			// cache yet; only the API server's answer fails the backup.
			err = r.apiReader().Get(ctx, key, kv)
		}
		if err != nil {
			if !apierrors.IsNotFound(err) {
				return reconcile.Result{}, err
			}
			kv = nil
		}
	}
	var job *batchv1.Job
	if b.Status.Phase == kvv1.BackupRunning {
		var err error
		if job, err = r.observeJob(ctx, b); err != nil {
			return reconcile.Result{}, err
		}
	}
	p := planBackup(b, kv, job)
	switch p.step {
	case backupDone:
		return reconcile.Result{}, nil
	case backupFail, backupInterrupted:
		return reconcile.Result{}, r.finish(ctx, b, kv, failedStatus(b.Status, p.message, r.now()))
	case backupWaitJob:
		return reconcile.Result{}, r.recordJob(ctx, b, kv, job)
	}

	// Running: written with the resourceVersion read, so that two operators
	// (or two reconciles) never both take the backup.
	base := b.DeepCopy()
	start := metav1.NewTime(r.now().UTC().Truncate(time.Second))
	b.Status.Phase, b.Status.StartTime, b.Status.Message = kvv1.BackupRunning, &start, ""
	b.Status.Attempts++
	if err := r.Client.Status().Patch(ctx, b, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		if apierrors.IsConflict(err) {
			return reconcile.Result{RequeueAfter: time.Second}, nil // a stale read: look again
		}
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if pvc := p.destination.PersistentVolumeClaim; pvc != nil {
		// The Job takes it; its watch brings the backup back here.
		if err := r.startJob(ctx, b, kv, pvc); err != nil {
			return reconcile.Result{}, r.finish(ctx, b, kv, failedStatus(b.Status, err.Error(), r.now()))
		}
		return reconcile.Result{}, nil
	}
	m, uri, source, err := r.take(ctx, kv, p.destination, b.Labels[kvv1.LabelScheduled] == "true")
	if err != nil {
		return reconcile.Result{}, r.finish(ctx, b, kv, failedStatus(b.Status, err.Error(), r.now()))
	}
	return reconcile.Result{}, r.finish(ctx, b, kv, succeededStatus(b.Status, m, uri, source, r.now()))
}

// take streams one snapshot of kv into d; after a scheduled backup it
// applies the retention (a failure there is an event, not a failed backup).
func (r *BackupReconciler) take(ctx context.Context, kv *kvv1.KVStore, d *kvv1.BackupDestination, scheduled bool) (backup.Manifest, string, string, error) {
	ctx, cancel := context.WithTimeout(ctx, backupTimeout(kv))
	defer cancel()
	dest, err := r.destination(ctx, kv.Namespace, d.S3)
	if err != nil {
		return backup.Manifest{}, "", "", err
	}
	access, err := r.access(ctx, kv)
	if err != nil {
		return backup.Manifest{}, "", "", err
	}
	body, info, source, err := r.Source.Snapshot(ctx, kv, access)
	if err != nil {
		return backup.Manifest{}, "", "", fmt.Errorf("snapshot: %w", err)
	}
	defer body.Close()
	info.Now, info.MaxBytesPerSecond = r.Now, backupMaxRate(kv)
	m, err := backup.Write(ctx, dest, body, info)
	if err != nil {
		return backup.Manifest{}, "", "", err // it names the destination and the S3 error
	}
	if scheduled {
		pctx, pcancel := context.WithTimeout(context.WithoutCancel(ctx), pruneTimeout)
		pruned, err := r.prune(pctx, kv, dest)
		pcancel()
		r.prunedEvents(kv, pruned, 0, err)
	}
	return m, strings.TrimSuffix(dest.URI(), "/") + "/" + m.Object, source, nil
}

// destination builds the S3 destination d with its Secrets. The CA bundle
// stays in memory: the operator's root filesystem is read-only.
func (r *BackupReconciler) destination(ctx context.Context, ns string, d *kvv1.S3Destination) (backup.Destination, error) {
	creds := &corev1.Secret{}
	if err := r.apiReader().Get(ctx, types.NamespacedName{Namespace: ns, Name: d.CredentialsSecret}, creds); err != nil {
		return nil, fmt.Errorf("credentials secret %s: %w", d.CredentialsSecret, err)
	}
	var caPEM []byte
	if d.CA != nil {
		s := &corev1.Secret{}
		if err := r.apiReader().Get(ctx, types.NamespacedName{Namespace: ns, Name: d.CA.Name}, s); err != nil {
			return nil, fmt.Errorf("CA secret %s: %w", d.CA.Name, err)
		}
		pem, ok := s.Data[d.CA.Key]
		if !ok {
			return nil, fmt.Errorf("CA secret %s has no key %s", d.CA.Name, d.CA.Key)
		}
		caPEM = pem
	}
	opts, err := s3Options(d, creds.Data, caPEM)
	if err != nil {
		return nil, err
	}
	dest, err := backup.NewS3(d.Bucket, d.Prefix, opts)
	if err != nil {
		return nil, err
	}
	return dest, nil
}

// access reads the admin token and the pods' CA bundle, as the KVStore
// reconciler observes them.
func (r *BackupReconciler) access(ctx context.Context, kv *kvv1.KVStore) (ServerAccess, error) {
	n := namesFor(kv)
	auth := &corev1.Secret{}
	if err := r.apiReader().Get(ctx, types.NamespacedName{Namespace: kv.Namespace, Name: n.auth}, auth); err != nil {
		return ServerAccess{}, fmt.Errorf("admin token secret %s: %w", n.auth, err)
	}
	a := ServerAccess{Token: string(auth.Data[AuthTokenKey])}
	if podAPITLS(kv) {
		s := &corev1.Secret{}
		if err := r.apiReader().Get(ctx, types.NamespacedName{Namespace: kv.Namespace, Name: n.podTLS}, s); err != nil {
			return ServerAccess{}, fmt.Errorf("pods' CA secret %s: %w", n.podTLS, err)
		}
		a.CABundle = s.Data[caCertKey]
	}
	return a, nil
}

// finish records st on b, then on b's KVStore (when it exists), emits the
// event and updates the KVStore's metrics (none without a KVStore).
func (r *BackupReconciler) finish(ctx context.Context, b *kvv1.KVStoreBackup, kv *kvv1.KVStore, st kvv1.KVStoreBackupStatus) error {
	base := b.DeepCopy()
	b.Status = st
	if err := r.Client.Status().Patch(ctx, b, client.MergeFrom(base)); err != nil {
		return fmt.Errorf("update backup status: %w", err)
	}
	ok := st.Phase == kvv1.BackupSucceeded
	var related runtime.Object // untyped nil when there is no KVStore
	if kv != nil {
		related = kv
	}
	if ok {
		r.Recorder.Eventf(b, related, corev1.EventTypeNormal, ReasonBackupSucceeded, "Backup", "wrote %s (revision %d, %d bytes) from %s", st.DestinationURI, st.Revision, st.SizeBytes, st.Source)
	} else {
		r.Recorder.Eventf(b, related, corev1.EventTypeWarning, ReasonBackupFailed, "Backup", "%s", st.Message)
	}
	if kv == nil {
		return nil // no KVStore, no series: they are deleted with it
	}
	if ok {
		backupSuccesses.WithLabelValues(kv.Namespace, kv.Name).Inc()
	} else {
		backupLastFailure.WithLabelValues(kv.Namespace, kv.Name).Set(float64(r.now().Unix()))
		backupFailures.WithLabelValues(kv.Namespace, kv.Name).Inc()
	}
	// The KVStore's status has another writer (the KVStore reconciler,
	// which keeps lastBackup and this condition): patch with the
	// resourceVersion read, and on a conflict read again and retry.
	for attempt := 0; ; attempt++ {
		fresh := &kvv1.KVStore{}
		if err := r.apiReader().Get(ctx, types.NamespacedName{Namespace: kv.Namespace, Name: kv.Name}, fresh); err != nil {
			if apierrors.IsNotFound(err) {
				forgetBackupMetrics(kv.Namespace, kv.Name) // deleted while the backup ran
			}
			return client.IgnoreNotFound(err)
		}
		base := fresh.DeepCopy()
		fresh.Status = kvStatusAfterBackup(fresh.Status, fresh, b, r.now())
		setLastSuccess(fresh) // status.lastBackup: the newest success, not this one if it is older
		err := r.Client.Status().Patch(ctx, fresh, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
		if err == nil || !apierrors.IsConflict(err) || attempt >= 4 {
			if err != nil {
				return fmt.Errorf("update KVStore status: %w", err)
			}
			return nil
		}
	}
}

func (r *BackupReconciler) apiReader() client.Reader {
	if r.APIReader != nil {
		return r.APIReader
	}
	return r.Client
}

func (r *BackupReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// SetupWithManager registers the controller: it watches KVStoreBackups
// and their Jobs.
func (r *BackupReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("kvstorebackup").
		For(&kvv1.KVStoreBackup{}).
		Owns(&batchv1.Job{}).
		Complete(r)
}
