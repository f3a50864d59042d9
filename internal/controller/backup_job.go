package controller

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kvv1 "kvstore.dev/kvstore/api/v1"
	"kvstore.dev/kvstore/internal/backup"
	"kvstore.dev/kvstore/internal/config"
)

// Annotations on a backup Job: what the operator needs to record its
// outcome, even when the KVStore is gone by then.
const (
	// BackupSourceAnnotation is the pod the Job streams the snapshot from.
	BackupSourceAnnotation = "kvstore.dev/backup-source"
	// BackupDestinationAnnotation is the destination's URI,
	// pvc://claim/subpath.
	BackupDestinationAnnotation = "kvstore.dev/backup-destination"
)

// Paths in a backup Job's container.
const (
	backupMountPath = "/backup"             // the claim
	backupCADir     = "/etc/kvstore-pod-ca" // <name>-pod-tls's ca.crt
)

// maxJobName is the longest Job name: the Job controller labels its pods
// with it, and a label value has at most 63 characters.
const maxJobName = 63

// backupJobName is the name of b's Job: <b>-backup, or, when that is too
// long, a prefix of b's name, a hash of all of it and -backup.
func backupJobName(b *kvv1.KVStoreBackup) string {
	const suffix = "-backup"
	if n := b.Name + suffix; len(n) <= maxJobName {
		return n
	}
	sum := sha256.Sum256([]byte(b.Name))
	h := hex.EncodeToString(sum[:4])
	prefix := strings.TrimRight(b.Name[:maxJobName-len(suffix)-len(h)-1], "-.")
	return prefix + "-" + h + suffix
}

// pvcURI is the URI of the directory d names, pvc://claim[/subpath].
func pvcURI(d *kvv1.PVCDestination) string {
	if d.SubPath == "" {
		return "pvc://" + d.ClaimName
	}
	return "pvc://" + d.ClaimName + "/" + strings.Trim(d.SubPath, "/")
}

// backupTimeout is spec.backup.timeout, else DefaultBackupTimeout.
func backupTimeout(kv *kvv1.KVStore) time.Duration {
	if kv.Spec.Backup != nil && kv.Spec.Backup.Timeout != nil && kv.Spec.Backup.Timeout.Duration > 0 {
		return kv.Spec.Backup.Timeout.Duration
	}
	return DefaultBackupTimeout
}

// backupMaxRate is spec.backup.maxRate in bytes per second (0: no
// limit), else backup.DefaultMaxRate; the S3 path and the Job's
// --max-rate use it alike.
func backupMaxRate(kv *kvv1.KVStore) int64 {
	if kv.Spec.Backup != nil && kv.Spec.Backup.MaxRate != nil {
		return *kv.Spec.Backup.MaxRate
	}
	return backup.DefaultMaxRate
}

// commandTimeout is the --timeout of a backup Job whose deadline is
// timeout: a tenth less (the pod's start counts against the deadline), so
// the command reports its own timeout before the Job is killed; within
// the command's range, [1s, 48h].
func commandTimeout(timeout time.Duration) time.Duration {
	d := (timeout - timeout/10).Truncate(time.Second)
	return min(max(d, time.Second), 48*time.Hour)
}

// backupJobInputs are what desiredBackupJob needs beyond the objects.
type backupJobInputs struct {
	claim *kvv1.PVCDestination
	// source is the pod to stream from (pickSnapshotMember).
	source string
	// retention is applied by the Job after the backup (scheduled
	// backups); the zero Retention applies none.
	retention backup.Retention
	timeout   time.Duration
	// maxRate is the Job's --max-rate, bytes per second (backupMaxRate;
	// 0: no limit).
	maxRate int64
}

// desiredBackupJob is the Job that takes backup b of kv into a
// PersistentVolumeClaim: `kvstore backup` from the pod in.source into
// file:///backup/<subPath>, the claim mounted at /backup, the admin token
// from the auth Secret in the environment (never in the arguments), the
// pods' CA from <name>-pod-tls, the result in the termination message.
func desiredBackupJob(kv *kvv1.KVStore, b *kvv1.KVStoreBackup, o BuildOptions, in backupJobInputs) *batchv1.Job {
	n := namesFor(kv)
	dest := backupMountPath
	if in.claim.SubPath != "" {
		dest = path.Join(backupMountPath, in.claim.SubPath)
	}
	args := []string{"backup",
		"--server=" + apiScheme(kv) + "://" + in.source + "." + peersHost(kv, o) + ":" + strconv.Itoa(httpPort),
		"--destination=file://" + dest,
		"--result-file=" + terminationMessagePath,
		"--timeout=" + commandTimeout(in.timeout).String(),
		"--max-rate=" + strconv.FormatInt(in.maxRate, 10),
		"--log-format=json",
	}
	volumes := []corev1.Volume{{Name: "backup", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: in.claim.ClaimName}}}}
	mounts := []corev1.VolumeMount{{Name: "backup", MountPath: backupMountPath}}
	if podAPITLS(kv) {
		args = append(args, "--server-ca-file="+backupCADir+"/"+caCertKey)
		// Only ca.crt: the pods' keys stay out of the Job.
		volumes = append(volumes, corev1.Volume{Name: "pod-ca", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: n.podTLS, Items: []corev1.KeyToPath{{Key: caCertKey, Path: caCertKey}}, DefaultMode: ptr[int32](0o444)}}})
		mounts = append(mounts, corev1.VolumeMount{Name: "pod-ca", MountPath: backupCADir, ReadOnly: true})
	}
	if in.retention.KeepLast > 0 {
		args = append(args, "--keep-last="+strconv.Itoa(in.retention.KeepLast))
	}
	if in.retention.MaxAge > 0 {
		args = append(args, "--max-age="+backup.FormatAge(in.retention.MaxAge))
	}
	return desiredServerJob(kv, o, serverJob{
		name:      backupJobName(b),
		component: "backup",
		owner: metav1.OwnerReference{APIVersion: kvv1.GroupVersion.String(), Kind: "KVStoreBackup", Name: b.Name, UID: b.UID,
			Controller: ptr(true), BlockOwnerDeletion: ptr(true)},
		annotations: map[string]string{BackupSourceAnnotation: in.source, BackupDestinationAnnotation: pvcURI(in.claim)},
		args:        args,
		env: []corev1.EnvVar{{Name: config.EnvAdminToken, ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: n.auth}, Key: AuthTokenKey}}}},
		volumes:  volumes,
		mounts:   mounts,
		deadline: in.timeout,
	})
}

// jobOutcome is what a backup Job's state says about the backup.
type jobOutcome struct {
	// done: the Job finished (Complete or Failed); the fields below are set.
	done bool
	// result is the Job's result when it is a backup's (result.Name set):
	// the backup succeeded, whatever the Job's condition (a failed
	// retention fails the command, not the backup).
	result backup.Result
	// message says why the backup failed, when result.Name is empty.
	message string
}

// backupJobOutcome reads job's outcome from its condition and the
// termination message of its pod's container (pods are the Job's pods).
func backupJobOutcome(job *batchv1.Job, pods []corev1.Pod) jobOutcome {
	var cond *batchv1.JobCondition
	for i, c := range job.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			cond = &job.Status.Conditions[i]
		}
	}
	if cond == nil {
		return jobOutcome{}
	}
	how := "completed"
	if cond.Type == batchv1.JobFailed {
		how = "failed"
		if cond.Reason != "" || cond.Message != "" {
			how = fmt.Sprintf("failed (%s: %s)", cond.Reason, cond.Message)
		}
	}
	pod, term := terminatedContainer(pods)
	if term == nil {
		return jobOutcome{done: true, message: fmt.Sprintf("backup Job %s %s, and no pod of it reports a result", job.Name, how)}
	}
	r, err := backup.ParseResult([]byte(term.Message))
	switch {
	case err != nil:
		return jobOutcome{done: true, message: fmt.Sprintf("backup Job %s %s without a valid result (pod %s: exit code %d%s): %v%s",
			job.Name, how, pod, term.ExitCode, reasonSuffix(term.Reason), err, excerpt(term.Message))}
	case r.Name == "":
		return jobOutcome{done: true, result: r, message: r.Error}
	}
	return jobOutcome{done: true, result: r}
}

// terminatedContainer is the newest of pods whose kvstore container
// terminated, and that state.
func terminatedContainer(pods []corev1.Pod) (string, *corev1.ContainerStateTerminated) {
	pods = slices.Clone(pods)
	slices.SortFunc(pods, func(a, b corev1.Pod) int { return b.CreationTimestamp.Compare(a.CreationTimestamp.Time) })
	for _, p := range pods {
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Name == "kvstore" && cs.State.Terminated != nil {
				return p.Name, cs.State.Terminated
			}
		}
	}
	return "", nil
}

func reasonSuffix(reason string) string {
	if reason == "" {
		return ""
	}
	return ", " + reason
}

// excerpt quotes the end of a termination message that is not a result
// (with FallbackToLogsOnError, the end of the log: the error is last).
func excerpt(msg string) string {
	msg = strings.TrimSpace(msg)
	if msg == "" {
		return ""
	}
	const n = 300
	if len(msg) > n {
		msg = "..." + strings.ToValidUTF8(msg[len(msg)-n:], "")
	}
	return fmt.Sprintf("; its termination message ends %q", msg)
}

// manifestOf is the part of a backup's manifest a result carries.
func manifestOf(r backup.Result) backup.Manifest {
	return backup.Manifest{Name: r.Name, Object: r.Object(), SHA256: r.SHA256, SizeBytes: r.SizeBytes, Revision: r.Revision}
}
