package controller

import (
	"context"
	"fmt"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kvv1 "kvstore.dev/kvstore/api/v1"
)

// Reasons of the bootstrap events and of the Degraded condition while a
// bootstrap cannot go on.
const (
	ReasonRestoreStarted  = "RestoreStarted"
	ReasonRestored        = "BootstrapRestored"
	ReasonBootstrapFailed = "BootstrapFailed"
	// ReasonBackupNotReady: the KVStoreBackup to restore has not
	// succeeded yet; the restore waits for it.
	ReasonBackupNotReady = "BackupNotReady"
)

// bootstrapObserved is what a bootstrap from a backup is decided from,
// read (observeBootstrap) only while the KVStore may still restore one.
type bootstrapObserved struct {
	// backup is spec.bootstrap.fromBackup.backupName's KVStoreBackup, nil
	// when absent or not named; backupKV the KVStore it was taken of (its
	// spec.backup.destination is the backup's when it names none), nil
	// when absent.
	backup   *kvv1.KVStoreBackup
	backupKV *kvv1.KVStore
	// claim is pod 0's data claim and job the restore Job, nil when absent.
	claim *corev1.PersistentVolumeClaim
	job   *batchv1.Job
	// message is the termination message of the restore Job's container
	// ("" when none terminated).
	message string
}

// bootstrapStep is what the KVStore's bootstrap lets the reconcile do.
type bootstrapStep int

const (
	bootstrapDone bootstrapStep = iota // nothing to restore (or restored): the StatefulSet as usual
	bootstrapWait                      // a restore runs or waits for its backup: no StatefulSet yet
	bootstrapFail                      // the restore failed: no StatefulSet, ever
)

// bootstrapPlan is the decision about a KVStore's bootstrap.
type bootstrapPlan struct {
	step bootstrapStep
	// status is status.bootstrap to write; nil leaves it as it is.
	status *kvv1.BootstrapStatus
	// claim and job are to be created (nil: not).
	claim *corev1.PersistentVolumeClaim
	job   *batchv1.Job
	// problem, with bootstrapFail or a wait for the backup, is the
	// Degraded condition's reason and message.
	problem *problem
	// event is recorded once the plan is carried out (Normal).
	event *event
}

// mayRestore reports whether kv may still restore a backup: it asks for
// one, has not been restored, and has no StatefulSet (a KVStore whose
// servers ran is never restored over).
func mayRestore(kv *kvv1.KVStore, haveStatefulSet bool) bool {
	b := kv.Spec.Bootstrap
	if b == nil || b.FromBackup == nil || haveStatefulSet {
		return false
	}
	return kv.Status.Bootstrap == nil || kv.Status.Bootstrap.Phase != kvv1.BootstrapRestored
}

// planBootstrap decides kv's bootstrap from what was observed (in is nil
// when mayRestore said no). It is pure.
func planBootstrap(kv *kvv1.KVStore, haveStatefulSet bool, in *bootstrapObserved, o BuildOptions) bootstrapPlan {
	if st := kv.Status.Bootstrap; haveStatefulSet && st != nil && st.Phase == kvv1.BootstrapRestoring {
		// The operator creates the StatefulSet only once the Job is
		// Complete: the status write that said so was lost.
		st = st.DeepCopy()
		st.Phase = kvv1.BootstrapRestored
		return bootstrapPlan{step: bootstrapDone, status: st}
	}
	if !mayRestore(kv, haveStatefulSet) || in == nil {
		return bootstrapPlan{step: bootstrapDone}
	}
	if st := kv.Status.Bootstrap; st != nil && st.Phase == kvv1.BootstrapFailed {
		return bootstrapPlan{step: bootstrapFail, problem: &problem{ReasonBootstrapFailed, st.Message}}
	}
	src, wait, msg := resolveRestoreSource(kv, in)
	switch {
	case wait:
		return bootstrapPlan{step: bootstrapWait, problem: &problem{ReasonBackupNotReady, msg}}
	case msg != "":
		return failBootstrap(kv, &kvv1.BootstrapStatus{}, msg)
	}
	st := &kvv1.BootstrapStatus{Phase: kvv1.BootstrapRestoring, SourceURI: src.describe(), SHA256: src.sha256, JobName: restoreJobName(kv)}
	job := in.job
	if job == nil {
		p := bootstrapPlan{step: bootstrapWait, status: st, job: desiredRestoreJob(kv, o, src),
			event: &event{ReasonRestoreStarted, "Restore", fmt.Sprintf("restoring backup %s onto claim %s with Job %s", st.SourceURI, dataClaimName(kv, 0), st.JobName)}}
		if in.claim == nil {
			p.claim = desiredDataClaim(kv, 0)
		}
		return p
	}
	if !metav1IsControlledBy(job, kv) {
		return bootstrapPlan{step: bootstrapWait, problem: &problem{"ChildConflict", fmt.Sprintf("Job %s exists and is not controlled by this KVStore; delete it", job.Name)}}
	}
	switch cond, done := jobFinished(job); {
	case done && cond.Type == batchv1.JobComplete:
		st.Phase = kvv1.BootstrapRestored
		return bootstrapPlan{step: bootstrapDone, status: st,
			event: &event{ReasonRestored, "Restore", fmt.Sprintf("backup %s (sha256 %s) restored onto claim %s; the servers start", st.SourceURI, st.SHA256, dataClaimName(kv, 0))}}
	case done:
		why := strings.TrimSpace(in.message)
		if why == "" {
			why = strings.TrimSpace(cond.Reason + ": " + cond.Message)
		}
		return failBootstrap(kv, st, fmt.Sprintf("the restore Job %s failed: %s", job.Name, why))
	}
	return bootstrapPlan{step: bootstrapWait, status: st}
}

// failBootstrap is the plan of a bootstrap that failed with msg: status
// Failed, and no StatefulSet.
func failBootstrap(kv *kvv1.KVStore, st *kvv1.BootstrapStatus, msg string) bootstrapPlan {
	st.Phase, st.Message = kvv1.BootstrapFailed, msg+"; no server was started: delete this KVStore (and the claim "+dataClaimName(kv, 0)+") and create it again to retry"
	return bootstrapPlan{step: bootstrapFail, status: st, problem: &problem{ReasonBootstrapFailed, st.Message}}
}

// jobFinished is the Job's Complete or Failed condition, if it is True.
func jobFinished(j *batchv1.Job) (batchv1.JobCondition, bool) {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return c, true
		}
	}
	return batchv1.JobCondition{}, false
}

// resolveRestoreSource is spec.bootstrap.fromBackup resolved: its source,
// name and sha256, or a Succeeded KVStoreBackup's destination (its own, or
// its KVStore's spec.backup.destination), backupName and sha256. wait is
// set (with why in msg) while the KVStoreBackup has not finished; msg
// alone says why there is no source.
func resolveRestoreSource(kv *kvv1.KVStore, in *bootstrapObserved) (src restoreSource, wait bool, msg string) {
	fb := kv.Spec.Bootstrap.FromBackup
	if (fb.BackupName != "") == (fb.Source != nil) {
		return src, false, "spec.bootstrap.fromBackup sets exactly one of backupName and source"
	}
	if d := fb.Source; d != nil {
		switch {
		case fb.Name == "" || fb.SHA256 == "":
			return src, false, "spec.bootstrap.fromBackup.source needs name and sha256"
		case (d.S3 == nil) == (d.PersistentVolumeClaim == nil):
			return src, false, "spec.bootstrap.fromBackup.source sets exactly one of s3 and persistentVolumeClaim"
		}
		return restoreSource{dest: *d, name: fb.Name, sha256: fb.SHA256}, false, ""
	}
	b := in.backup
	ref := fmt.Sprintf("KVStoreBackup %s (spec.bootstrap.fromBackup.backupName)", fb.BackupName)
	switch {
	case b == nil:
		return src, false, fmt.Sprintf("%s does not exist in namespace %s", ref, kv.Namespace)
	case b.Status.Phase == kvv1.BackupFailed:
		return src, false, fmt.Sprintf("%s failed (%s); name a Succeeded backup", ref, b.Status.Message)
	case b.Status.Phase != kvv1.BackupSucceeded:
		return src, true, fmt.Sprintf("%s has not succeeded yet (phase %q); the restore waits for it", ref, b.Status.Phase)
	case b.Status.BackupName == "" || b.Status.SHA256 == "":
		return src, false, fmt.Sprintf("%s succeeded but its status has no backupName or sha256", ref)
	}
	d := b.Spec.Destination
	if d == nil && in.backupKV != nil && in.backupKV.Spec.Backup != nil {
		d = &in.backupKV.Spec.Backup.Destination
	}
	switch {
	case d == nil:
		return src, false, fmt.Sprintf("%s has no spec.destination and its KVStore %s has no spec.backup.destination (or is gone); "+
			"set spec.bootstrap.fromBackup.source, name and sha256 instead", ref, b.Spec.KVStoreName)
	case (d.S3 == nil) == (d.PersistentVolumeClaim == nil):
		return src, false, fmt.Sprintf("%s: its destination sets neither s3 nor persistentVolumeClaim", ref)
	case d.S3 != nil && b.Status.DestinationURI != "" &&
		(restoreSource{dest: *d, name: b.Status.BackupName}).describe() != b.Status.DestinationURI:
		return src, false, fmt.Sprintf("%s was written to %s, but its destination is now elsewhere; set spec.bootstrap.fromBackup.source, name and sha256 instead", ref, b.Status.DestinationURI)
	}
	return restoreSource{dest: *d, name: b.Status.BackupName, sha256: b.Status.SHA256}, false, ""
}

// observeBootstrap reads what planBootstrap decides from: the named
// KVStoreBackup and its KVStore, pod 0's claim (from the API server: the
// operator does not cache claims), the restore Job, and the termination
// message of its pod's container.
func (r *Reconciler) observeBootstrap(ctx context.Context, kv *kvv1.KVStore) (*bootstrapObserved, error) {
	in := &bootstrapObserved{}
	get := func(c client.Reader, name string, o client.Object) (bool, error) {
		err := c.Get(ctx, client.ObjectKey{Namespace: kv.Namespace, Name: name}, o)
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("get %T %s: %w", o, name, err)
		}
		return true, nil
	}
	if name := kv.Spec.Bootstrap.FromBackup.BackupName; name != "" {
		b := &kvv1.KVStoreBackup{}
		if ok, err := get(r.Client, name, b); err != nil {
			return nil, err
		} else if ok {
			in.backup = b
			bkv := &kvv1.KVStore{}
			if ok, err := get(r.Client, b.Spec.KVStoreName, bkv); err != nil {
				return nil, err
			} else if ok {
				in.backupKV = bkv
			}
		}
	}
	claim := &corev1.PersistentVolumeClaim{}
	if ok, err := get(r.apiReader(), dataClaimName(kv, 0), claim); err != nil {
		return nil, err
	} else if ok {
		in.claim = claim
	}
	job := &batchv1.Job{}
	if ok, err := get(r.Client, restoreJobName(kv), job); err != nil {
		return nil, err
	} else if ok {
		in.job = job
		var pods corev1.PodList
		if err := r.apiReader().List(ctx, &pods, client.InNamespace(kv.Namespace), client.MatchingLabels{batchv1.JobNameLabel: job.Name}); err != nil {
			return nil, fmt.Errorf("list the pods of Job %s: %w", job.Name, err)
		}
		in.message = terminationMessage(pods.Items)
	}
	return in, nil
}

// terminationMessage is the message of the first terminated container
// among pods.
func terminationMessage(pods []corev1.Pod) string {
	for _, p := range pods {
		for _, cs := range p.Status.ContainerStatuses {
			if t := cs.State.Terminated; t != nil && t.Message != "" {
				return t.Message
			}
		}
	}
	return ""
}

// actBootstrap creates what p asks for: pod 0's claim, then the restore
// Job (each left alone when it exists already).
func (r *Reconciler) actBootstrap(ctx context.Context, kv *kvv1.KVStore, p *bootstrapPlan) error {
	if p.claim != nil {
		if err := r.Client.Create(ctx, p.claim, client.FieldOwner(FieldOwner)); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create PersistentVolumeClaim %s: %w", p.claim.Name, err)
		}
	}
	if p.job != nil {
		if err := r.Client.Create(ctx, p.job, client.FieldOwner(FieldOwner)); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create Job %s: %w", p.job.Name, err)
		}
	}
	if e := p.event; e != nil {
		r.Recorder.Eventf(kv, nil, corev1.EventTypeNormal, e.reason, e.action, "%s", e.note)
	}
	return nil
}
