package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kvv1 "kvstore.dev/kvstore/api/v1"
	"kvstore.dev/kvstore/internal/config"
	"kvstore.dev/kvstore/test/harness"
)

// TestBackupToPVC runs KVStoreBackups with a persistentVolumeClaim
// destination. Envtest has no Job controller and no kubelet, so the test
// plays them (kubeletRun): it runs the Job's container command for real
// (the kvstore binary) with a temporary directory standing in for the
// claim and server processes for the pods, then writes the pod's
// terminated state and the Job's condition, as they would.
func TestBackupToPVC(t *testing.T) {
	bin := harness.Binary(t, "server")
	ns := newNamespace(t)
	kv := &kvv1.KVStore{ObjectMeta: metav1.ObjectMeta{Name: "pv", Namespace: ns}}
	kv.Spec.TLS.Pods = "Disabled"
	kv.Spec.Backup = &kvv1.BackupSpec{
		Destination: kvv1.BackupDestination{PersistentVolumeClaim: &kvv1.PVCDestination{ClaimName: "backups", SubPath: "team/pv"}},
		Retention:   kvv1.BackupRetention{KeepLast: ptr[int32](1)},
		Timeout:     &metav1.Duration{Duration: 10 * time.Minute},
	}
	create(t, kv)
	c := startBackupServers(t, kv, 2)
	leader := c.Leader(t)
	for i := range 50 {
		if r := leader.Client(t).Put(fmt.Sprintf("k%02d", i), []byte(strings.Repeat("v", 100))); !r.OK() {
			t.Fatalf("put: %v", r)
		}
	}
	follower := c.Others(leader)[0].ID
	claim := t.TempDir() // the volume, mounted at /backup

	var first *kvv1.KVStoreBackup
	t.Run("succeeds", func(t *testing.T) {
		b := newBackup(t, ns, "first", kv.Name, false)
		job := waitJob(t, b)
		if args := job.Spec.Template.Spec.Containers[0].Args; slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--keep-last") }) {
			t.Errorf("an on-demand backup's Job applies the retention: %q", args)
		}
		// Running while the Job runs, and still Running after reconciles
		// (the Job's creation brought one).
		if got := getBackup(t, ns, b.Name); got.Status.Phase != kvv1.BackupRunning || got.Status.Attempts != 1 {
			t.Fatalf("while the Job runs: %+v", got.Status)
		}
		// An operator started afresh resumes it: still Running, no second Job.
		restarted := &BackupReconciler{Client: k8s, Recorder: &countingRecorder{}, Options: testOpts, Source: fixedMember("elsewhere")}
		if _, err := restarted.Reconcile(ctx, reconcile.Request{NamespacedName: key(ns, b.Name)}); err != nil {
			t.Fatal(err)
		}
		if got := getBackup(t, ns, b.Name); got.Status.Phase != kvv1.BackupRunning || got.Status.Attempts != 1 {
			t.Fatalf("after a restart, while the Job runs: %+v", got.Status)
		}
		kubeletRun(t, bin, job, claim, nil)
		first = waitBackup(t, ns, b.Name)
		st := first.Status
		if st.Phase != kvv1.BackupSucceeded {
			t.Fatalf("phase %s: %s", st.Phase, st.Message)
		}
		if st.Source != follower {
			t.Errorf("source %q, want the caught-up follower %q", st.Source, follower)
		}
		if want := "pvc://backups/team/pv/" + st.BackupName + ".db"; st.DestinationURI != want {
			t.Errorf("destinationURI %q, want %q", st.DestinationURI, want)
		}
		data, err := os.ReadFile(filepath.Join(claim, "team", "pv", st.BackupName+".db"))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); got != st.SHA256 || int64(len(data)) != st.SizeBytes || st.Revision < 1 || st.CompletionTime == nil {
			t.Errorf("the file's sha256 %s (%d bytes); status %+v", got, len(data), st)
		}
		eventually(t, "the KVStore's lastBackup and condition", func() error {
			k := &kvv1.KVStore{}
			if err := get(ns, kv.Name, k); err != nil {
				return err
			}
			if k.Status.LastBackup == nil || k.Status.LastBackup.Name != b.Name || k.Status.LastBackup.SHA256 != st.SHA256 {
				return fmt.Errorf("lastBackup %+v", k.Status.LastBackup)
			}
			if c := meta.FindStatusCondition(k.Status.Conditions, kvv1.ConditionLastBackupSucceeded); c == nil || c.Status != metav1.ConditionTrue {
				return fmt.Errorf("condition %+v", c)
			}
			return nil
		})
		waitEvent(t, ns, b.Name, corev1.EventTypeNormal, ReasonBackupSucceeded)
	})

	t.Run("scheduled, with the retention", func(t *testing.T) {
		var names []string
		for i := range 2 {
			b := newBackup(t, ns, fmt.Sprintf("pv-2026120312000%d", i), kv.Name, true)
			job := waitJob(t, b)
			if args := job.Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, "--keep-last=1") {
				t.Errorf("a scheduled backup's Job does not apply the retention: %q", args)
			}
			kubeletRun(t, bin, job, claim, nil)
			if got := waitBackup(t, ns, b.Name); got.Status.Phase != kvv1.BackupSucceeded {
				t.Fatalf("%s: %+v", b.Name, got.Status)
			}
			names = append(names, b.Name)
		}
		// The second run deleted the first scheduled backup (and the
		// on-demand one) from the claim; the operator deletes the first
		// scheduled KVStoreBackup, not the on-demand one.
		eventually(t, "the pruned scheduled KVStoreBackup deleted", func() error {
			if err := get(ns, names[0], &kvv1.KVStoreBackup{}); !apierrors.IsNotFound(err) {
				return fmt.Errorf("%s: %v", names[0], err)
			}
			return nil
		})
		for _, n := range []string{names[1], "first"} {
			if err := get(ns, n, &kvv1.KVStoreBackup{}); err != nil {
				t.Errorf("%s: %v", n, err)
			}
		}
		entries, _ := os.ReadDir(filepath.Join(claim, "team", "pv"))
		if len(entries) != 2 { // the newest backup's .db and .json
			t.Errorf("the claim holds %v", entries)
		}
	})

	t.Run("the backup fails", func(t *testing.T) {
		b := newBackup(t, ns, "refused", kv.Name, false)
		job := waitJob(t, b)
		// The pod it streams from is down.
		kubeletRun(t, bin, job, claim, func(args []string) { replaceArg(args, "--server=", "http://127.0.0.1:1") })
		got := waitBackup(t, ns, b.Name)
		if got.Status.Phase != kvv1.BackupFailed || !strings.Contains(got.Status.Message, "connection refused") || got.Status.CompletionTime == nil {
			t.Fatalf("status %+v", got.Status)
		}
		eventually(t, "the KVStore's condition False", func() error {
			k := &kvv1.KVStore{}
			if err := get(ns, kv.Name, k); err != nil {
				return err
			}
			c := meta.FindStatusCondition(k.Status.Conditions, kvv1.ConditionLastBackupSucceeded)
			if c == nil || c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, "connection refused") {
				return fmt.Errorf("condition %+v", c)
			}
			if k.Status.LastBackup == nil || k.Status.LastBackup.Name == b.Name {
				return fmt.Errorf("lastBackup %+v", k.Status.LastBackup)
			}
			return nil
		})
		waitEvent(t, ns, b.Name, corev1.EventTypeWarning, ReasonBackupFailed)
	})

	t.Run("a garbled result fails", func(t *testing.T) {
		b := newBackup(t, ns, "garbled", kv.Name, false)
		job := waitJob(t, b)
		finishJob(t, job, 0, `{"name":"kvstore-2026`, true) // cut short
		got := waitBackup(t, ns, b.Name)
		if got.Status.Phase != kvv1.BackupFailed || !strings.Contains(got.Status.Message, "without a valid result") {
			t.Fatalf("status %+v", got.Status)
		}
	})

	t.Run("the Job is gone", func(t *testing.T) {
		b := newBackup(t, ns, "gone", kv.Name, false)
		job := waitJob(t, b)
		if err := k8s.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil {
			t.Fatal(err)
		}
		got := waitBackup(t, ns, b.Name)
		if got.Status.Phase != kvv1.BackupFailed || !strings.Contains(got.Status.Message, "is gone") {
			t.Fatalf("status %+v", got.Status)
		}
	})
}

func newBackup(t *testing.T, ns, name, kvName string, scheduled bool) *kvv1.KVStoreBackup {
	t.Helper()
	b := &kvv1.KVStoreBackup{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: kvv1.KVStoreBackupSpec{KVStoreName: kvName}}
	if scheduled {
		b.Labels = map[string]string{kvv1.LabelKVStore: kvName, kvv1.LabelScheduled: "true"}
	}
	if err := k8s.Create(ctx, b); err != nil {
		t.Fatal(err)
	}
	return b
}

func getBackup(t *testing.T, ns, name string) *kvv1.KVStoreBackup {
	t.Helper()
	b := &kvv1.KVStoreBackup{}
	if err := get(ns, name, b); err != nil {
		t.Fatal(err)
	}
	return b
}

// waitJob waits for b's backup Job.
func waitJob(t *testing.T, b *kvv1.KVStoreBackup) *batchv1.Job {
	t.Helper()
	job := &batchv1.Job{}
	eventually(t, "backup Job of "+b.Name, func() error { return get(b.Namespace, backupJobName(b), job) })
	return job
}

// kubeletRun runs the Job's container command as the kubelet would, with
// the claim at dir, the Job's source pod at its server process, and the
// Job's environment, edited by edit; then finishes the Job (finishJob)
// with the exit status and the termination message file.
func kubeletRun(t *testing.T, bin string, job *batchv1.Job, dir string, edit func(args []string)) {
	t.Helper()
	c := job.Spec.Template.Spec.Containers[0]
	args := slices.Clone(c.Args)
	src := job.Annotations[BackupSourceAnnotation]
	m, _ := backupServers.Load(job.Namespace)
	replaceArg(args, "--server=", m.(map[string]string)[src])
	for i, a := range args {
		if d, ok := strings.CutPrefix(a, "--destination=file://"+backupMountPath); ok {
			args[i] = "--destination=file://" + dir + d
		}
	}
	term := filepath.Join(t.TempDir(), "termination-log")
	if err := os.WriteFile(term, nil, 0o644); err != nil { // the kubelet creates it
		t.Fatal(err)
	}
	replaceArg(args, "--result-file=", term)
	if edit != nil {
		edit(args)
	}
	var env []string
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			s := &corev1.Secret{}
			if err := get(job.Namespace, e.ValueFrom.SecretKeyRef.Name, s); err != nil {
				t.Fatal(err)
			}
			env = append(env, e.Name+"="+string(s.Data[e.ValueFrom.SecretKeyRef.Key]))
		default:
			env = append(env, e.Name+"="+e.Value)
		}
	}
	if !slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, config.EnvAdminToken+"=") }) {
		t.Fatalf("the Job's environment %v has no admin token", c.Env)
	}
	rctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(rctx, bin, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	code := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("run %q: %v", args, err)
	}
	t.Logf("kvstore %s: exit %d\n%s", strings.Join(args, " "), code, out)
	msg, err := os.ReadFile(term)
	if err != nil {
		t.Fatal(err)
	}
	finishJob(t, job, code, string(msg), code != 0)
}

func replaceArg(args []string, prefix, value string) {
	for i, a := range args {
		if strings.HasPrefix(a, prefix) {
			args[i] = prefix + value
		}
	}
}

// finishJob writes what the kubelet and the Job controller would once the
// Job's container exited with code and message: a pod of the Job with
// that terminated state, then the Job's Complete or (failed) Failed
// condition.
func finishJob(t *testing.T, job *batchv1.Job, code int, message string, failed bool) {
	t.Helper()
	finishJobWith(t, k8s, job, code, message, failed)
}

// finishJobWith is finishJob through the client c.
func finishJobWith(t *testing.T, k8s client.Client, job *batchv1.Job, code int, message string, failed bool) {
	t.Helper()
	c := job.Spec.Template.Spec.Containers[0]
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: job.Name + "-x1", Namespace: job.Namespace,
		Labels: map[string]string{batchv1.ControllerUidLabel: string(job.UID), batchv1.JobNameLabel: job.Name}},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: c.Name, Image: c.Image}}}}
	if err := k8s.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	pod.Status.Phase = corev1.PodSucceeded
	if failed {
		pod.Status.Phase = corev1.PodFailed
	}
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: c.Name, Image: c.Image, ImageID: "sha256:0",
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: int32(code), Message: message, StartedAt: now, FinishedAt: now}}}}
	if err := k8s.Status().Update(ctx, pod); err != nil {
		t.Fatalf("pod status: %v", err)
	}
	job.Status.StartTime = &now
	if failed {
		job.Status.Failed = 1
		job.Status.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit", LastTransitionTime: now},
			{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit", LastTransitionTime: now},
		}
	} else {
		job.Status.Succeeded, job.Status.CompletionTime = 1, &now
		job.Status.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: now},
		}
	}
	if err := k8s.Status().Update(ctx, job); err != nil {
		t.Fatalf("job status: %v", err)
	}
}
