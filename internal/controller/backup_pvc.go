package controller

import (
	"context"
	"errors"
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kvv1 "kvstore.dev/kvstore/api/v1"
)

// observeJob reads b's backup Job: nil when there is none, or when the Job
// of that name is not b's (a KVStoreBackup of the same name deleted
// before). The cache first; when it has none, the API server, since the
// Job may have been created a moment ago.
func (r *BackupReconciler) observeJob(ctx context.Context, b *kvv1.KVStoreBackup) (*batchv1.Job, error) {
	key := types.NamespacedName{Namespace: b.Namespace, Name: backupJobName(b)}
	job := &batchv1.Job{}
	err := r.Client.Get(ctx, key, job)
	if apierrors.IsNotFound(err) {
		err = r.apiReader().Get(ctx, key, job)
	}
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get backup Job %s: %w", key.Name, err)
	}
	if !metav1.IsControlledBy(job, b) {
		return nil, nil
	}
	return job, nil
}

// startJob creates the Job that takes b (Running) into the claim d: it
// picks the pod to stream from as an S3 backup would and passes the
// retention when b is a scheduled backup. An error fails the backup.
func (r *BackupReconciler) startJob(ctx context.Context, b *kvv1.KVStoreBackup, kv *kvv1.KVStore, d *kvv1.PVCDestination) error {
	in := backupJobInputs{claim: d, timeout: backupTimeout(kv), maxRate: backupMaxRate(kv)}
	if b.Labels[kvv1.LabelScheduled] == "true" {
		ret, err := retentionOf(kv)
		if err != nil {
			return err
		}
		in.retention = ret
	}
	access, err := r.access(ctx, kv)
	if err != nil {
		return err
	}
	if in.source, err = r.Source.Member(ctx, kv, access); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	job := desiredBackupJob(kv, b, r.Options, in)
	err = r.Client.Create(ctx, job)
	if apierrors.IsAlreadyExists(err) {
		// This backup's own (a reconcile that created it, then failed to
		// see it) is fine; another's is not.
		if mine, gerr := r.observeJob(ctx, b); gerr == nil && mine != nil {
			return nil
		}
		return fmt.Errorf("a Job named %s exists and is not this backup's: delete it, or create the backup under another name", job.Name)
	}
	if err != nil {
		return fmt.Errorf("create backup Job %s: %w", job.Name, err)
	}
	return nil
}

// recordJob records the outcome of b's Job once it finished (until then
// there is nothing to do: the Job's watch brings b back): Succeeded with
// the result's manifest, the scheduled KVStoreBackups whose backups the
// Job's retention deleted deleted in turn, or Failed with the cause.
func (r *BackupReconciler) recordJob(ctx context.Context, b *kvv1.KVStoreBackup, kv *kvv1.KVStore, job *batchv1.Job) error {
	if !backupJobOutcome(job, nil).done {
		return nil
	}
	pods := &corev1.PodList{}
	if err := r.apiReader().List(ctx, pods, client.InNamespace(job.Namespace),
		client.MatchingLabels{batchv1.ControllerUidLabel: string(job.UID)}); err != nil {
		return fmt.Errorf("list the pods of backup Job %s: %w", job.Name, err)
	}
	o := backupJobOutcome(job, pods.Items)
	if o.result.Name == "" {
		return r.finish(ctx, b, kv, failedStatus(b.Status, o.message, r.now()))
	}
	res := o.result
	uri := job.Annotations[BackupDestinationAnnotation] + "/" + res.Object()
	st := succeededStatus(b.Status, manifestOf(res), uri, job.Annotations[BackupSourceAnnotation], r.now())
	if kv != nil && b.Labels[kvv1.LabelScheduled] == "true" {
		var pruneErr error
		if res.PruneError != "" {
			pruneErr = errors.New(res.PruneError)
		}
		pruneErr = errors.Join(pruneErr, r.deleteScheduled(ctx, kv, res.Pruned))
		r.prunedEvents(kv, res.Pruned, res.PrunedOmitted, pruneErr)
	}
	return r.finish(ctx, b, kv, st)
}
