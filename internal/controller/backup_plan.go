package controller

import (
	"fmt"
	"slices"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kvv1 "kvstore.dev/kvstore/api/v1"
	"kvstore.dev/kvstore/internal/backup"
	"kvstore.dev/kvstore/wire"
)

// Keys of a backup destination's credentials Secret.
const (
	S3AccessKeyIDKey     = "accessKeyID"
	S3SecretAccessKeyKey = "secretAccessKey"
	S3SessionTokenKey    = "sessionToken"
)

// Reasons of the LastBackupSucceeded condition and of the backup events.
const (
	ReasonBackupSucceeded = "BackupSucceeded"
	ReasonBackupFailed    = "BackupFailed"
	// ReasonBackupsPruned and ReasonPruneFailed are the retention's
	// events on the KVStore.
	ReasonBackupsPruned = "BackupsPruned"
	ReasonPruneFailed   = "PruneFailed"
)

// backupStep is what the backup controller does with one KVStoreBackup.
type backupStep int

const (
	backupDone backupStep = iota // Succeeded or Failed: nothing more
	backupRun                    // take it now
	backupFail                   // it cannot be taken: Failed with the plan's message
	// backupInterrupted is a backup streamed by the operator found
	// Running: the operator stopped while it streamed (this controller runs
	// such a backup start to end within one Reconcile), so it failed.
	backupInterrupted
	// backupWaitJob is a backup to a PersistentVolumeClaim found Running
	// with its Job: the Job takes it; its outcome is recorded once the Job
	// has finished (backupJobOutcome).
	backupWaitJob
)

// backupPlan is the decision about one KVStoreBackup.
type backupPlan struct {
	step        backupStep
	destination *kvv1.BackupDestination // for backupRun
	message     string                  // for backupFail
}

// planBackup decides what to do with b, whose KVStore is kv (nil: not
// found) and whose Job (for a PersistentVolumeClaim destination, read when
// b is Running) is job (nil: none).
func planBackup(b *kvv1.KVStoreBackup, kv *kvv1.KVStore, job *batchv1.Job) backupPlan {
	switch b.Status.Phase {
	case kvv1.BackupSucceeded, kvv1.BackupFailed:
		return backupPlan{step: backupDone}
	case kvv1.BackupRunning:
		if job != nil {
			return backupPlan{step: backupWaitJob}
		}
		if d := b.Spec.Destination; (d != nil && d.PersistentVolumeClaim != nil) ||
			(d == nil && kv != nil && kv.Spec.Backup != nil && kv.Spec.Backup.Destination.PersistentVolumeClaim != nil) {
			return backupPlan{step: backupFail, message: fmt.Sprintf("the backup Job %s is gone: deleted before the operator read its result, or never created (the operator stopped)", backupJobName(b))}
		}
		return backupPlan{step: backupInterrupted, message: "the operator stopped while the backup was running"}
	}
	if kv == nil {
		return backupPlan{step: backupFail, message: fmt.Sprintf("KVStore %s/%s (spec.kvstoreName) does not exist", b.Namespace, b.Spec.KVStoreName)}
	}
	d, msg := resolveDestination(b, kv)
	if d == nil {
		return backupPlan{step: backupFail, message: msg}
	}
	return backupPlan{step: backupRun, destination: d}
}

// resolveDestination is b's own destination, else its KVStore's
// spec.backup.destination; nil and why when there is none usable.
func resolveDestination(b *kvv1.KVStoreBackup, kv *kvv1.KVStore) (*kvv1.BackupDestination, string) {
	d := b.Spec.Destination
	if d == nil && kv.Spec.Backup != nil {
		d = &kv.Spec.Backup.Destination
	}
	if d == nil || (d.S3 == nil && d.PersistentVolumeClaim == nil) {
		return nil, fmt.Sprintf("no destination: set spec.destination or KVStore %s spec.backup.destination", kv.Name)
	}
	return d, ""
}

// s3Options are the options of an S3 destination, with the credentials of
// its Secret's data (creds) and caPEM (the CA bundle, nil for none).
func s3Options(d *kvv1.S3Destination, creds map[string][]byte, caPEM []byte) (backup.S3Options, error) {
	ak, sk := strings.TrimSpace(string(creds[S3AccessKeyIDKey])), strings.TrimSpace(string(creds[S3SecretAccessKeyKey]))
	if ak == "" || sk == "" {
		return backup.S3Options{}, fmt.Errorf("secret %s: keys %s and %s must both be set", d.CredentialsSecret, S3AccessKeyIDKey, S3SecretAccessKeyKey)
	}
	token := strings.TrimSpace(string(creds[S3SessionTokenKey]))
	env := map[string]string{backup.EnvAccessKey: ak, backup.EnvSecretKey: sk, backup.EnvSessionToken: token}
	o := backup.S3Options{Endpoint: d.Endpoint, Region: d.Region, BucketLookup: d.BucketLookup, CAPEM: caPEM,
		Getenv: func(k string) string { return env[k] }}
	return o, o.Validate()
}

// pickSnapshotMember is the member a snapshot is streamed from: a caught-up
// follower (voter or not, it answered, its applied index within
// catchUpSlack of the leader's commit index), the lowest id first, else
// the leader. "" when the view names neither.
func pickSnapshotMember(v wire.ClusterStatus) string {
	var leaderCommit uint64
	haveLeader := false
	for _, m := range v.Members {
		if m.ID == v.LeaderID && m.Status != nil {
			leaderCommit, haveLeader = m.Status.CommitIndex, true
		}
	}
	if haveLeader {
		var ids []string
		for _, m := range v.Members {
			if m.ID == v.LeaderID || m.Status == nil || m.Status.State != wire.StateFollower {
				continue
			}
			if m.Status.AppliedIndex+catchUpSlack >= leaderCommit {
				ids = append(ids, m.ID)
			}
		}
		if len(ids) > 0 {
			slices.Sort(ids)
			return ids[0]
		}
	}
	return v.LeaderID
}

// succeededStatus is a backup's status once m was written to uri.
func succeededStatus(st kvv1.KVStoreBackupStatus, m backup.Manifest, uri, source string, now time.Time) kvv1.KVStoreBackupStatus {
	t := metav1.NewTime(now.UTC().Truncate(time.Second))
	st.Phase = kvv1.BackupSucceeded
	st.CompletionTime = &t
	st.BackupName = m.Name
	st.DestinationURI = uri
	st.Revision = int64(m.Revision)
	st.SizeBytes = m.SizeBytes
	st.SHA256 = m.SHA256
	st.Source = source
	st.Message = ""
	return st
}

// failedStatus is a backup's status after it failed with message.
func failedStatus(st kvv1.KVStoreBackupStatus, message string, now time.Time) kvv1.KVStoreBackupStatus {
	t := metav1.NewTime(now.UTC().Truncate(time.Second))
	st.Phase = kvv1.BackupFailed
	st.CompletionTime = &t
	st.Message = message
	return st
}

// kvStatusAfterBackup is the KVStore's status after b finished:
// status.lastBackup on success (unless a newer one is already recorded)
// and the LastBackupSucceeded condition.
func kvStatusAfterBackup(st kvv1.KVStoreStatus, kv *kvv1.KVStore, b *kvv1.KVStoreBackup, now time.Time) kvv1.KVStoreStatus {
	st = *st.DeepCopy()
	c := metav1.Condition{Type: kvv1.ConditionLastBackupSucceeded, ObservedGeneration: kv.Generation,
		LastTransitionTime: metav1.NewTime(now.UTC().Truncate(time.Second))}
	if b.Status.Phase == kvv1.BackupSucceeded {
		last := st.LastBackup
		if last == nil || last.CompletionTime == nil || b.Status.CompletionTime == nil || !b.Status.CompletionTime.Before(last.CompletionTime) {
			st.LastBackup = &kvv1.LastBackupStatus{Name: b.Name, CompletionTime: b.Status.CompletionTime,
				DestinationURI: b.Status.DestinationURI, Revision: b.Status.Revision, SizeBytes: b.Status.SizeBytes, SHA256: b.Status.SHA256}
		}
		c.Status, c.Reason = metav1.ConditionTrue, ReasonBackupSucceeded
		c.Message = fmt.Sprintf("backup %s wrote %s (revision %d, %d bytes)", b.Name, b.Status.DestinationURI, b.Status.Revision, b.Status.SizeBytes)
	} else {
		c.Status, c.Reason = metav1.ConditionFalse, ReasonBackupFailed
		c.Message = fmt.Sprintf("backup %s failed: %s", b.Name, b.Status.Message)
	}
	meta.SetStatusCondition(&st.Conditions, c)
	return st
}
