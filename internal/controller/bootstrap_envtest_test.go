package controller

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kvv1 "kvstore.dev/kvstore/api/v1"
	"kvstore.dev/kvstore/internal/backup"
	"kvstore.dev/kvstore/test/harness"
)

// backupForRestore takes a backup of a server process holding a few keys
// into a new directory, which stands for the source claim's volume.
func backupForRestore(t *testing.T) (string, backup.Manifest) {
	t.Helper()
	p := harness.StartProcess(t, harness.ProcessOptions{Name: "backup source"})
	c := p.Client(t)
	for i := range 10 {
		if r := c.Put(fmt.Sprintf("k%d", i), []byte("v")); !r.OK() {
			t.Fatal(r)
		}
	}
	req, _ := http.NewRequest("GET", p.URL+"/api/v1/snapshot", nil)
	req.Header.Set("Authorization", "Bearer "+p.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("snapshot: %v %v", resp, err)
	}
	defer resp.Body.Close()
	dir := t.TempDir()
	m, err := backup.Write(ctx, backup.NewDir(dir), resp.Body, backup.Info{})
	if err != nil {
		t.Fatal(err)
	}
	return dir, m
}

// playRestoreJob does what the Job controller and the kubelet would do
// with the KVStore's restore Job: it runs the Job's container command (the
// kvstore binary) with dataDir standing for pod 0's claim and sourceDir
// for the source claim, then writes a Pod of the Job with the container's
// termination message and marks the Job Complete or Failed. It returns
// whether the command succeeded and its output.
func playRestoreJob(t *testing.T, ns string, job *batchv1.Job, dataDir, sourceDir string) (bool, string) {
	t.Helper()
	c := job.Spec.Template.Spec.Containers[0]
	var args []string
	for _, a := range c.Args {
		a = strings.Replace(a, "--data-dir="+dataDir0, "--data-dir="+dataDir, 1)
		a = strings.Replace(a, "file://"+restoreSourceDir, "file://"+sourceDir, 1)
		args = append(args, a)
	}
	cmd := exec.Command(harness.Binary(t, "server"), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for _, e := range c.Env { // as the kubelet resolves them
		if e.ValueFrom == nil {
			cmd.Env = append(cmd.Env, e.Name+"="+e.Value)
			continue
		}
		ref := e.ValueFrom.SecretKeyRef
		sec := &corev1.Secret{}
		if err := get(ns, ref.Name, sec); err != nil {
			t.Fatalf("env %s: %v", e.Name, err)
		}
		if v, ok := sec.Data[ref.Key]; ok {
			cmd.Env = append(cmd.Env, e.Name+"="+string(v))
		} else if ref.Optional == nil || !*ref.Optional {
			t.Fatalf("env %s: Secret %s has no key %s", e.Name, ref.Name, ref.Key)
		}
	}
	runErr := cmd.Run()
	ok := runErr == nil
	exit := int32(0)
	if !ok {
		exit = 2
	}

	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: job.Name + "-x1", Namespace: ns, Labels: map[string]string{batchv1.JobNameLabel: job.Name}},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: c.Name, Image: c.Image}}}}
	if err := k8s.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	term := &corev1.ContainerStateTerminated{ExitCode: exit, Reason: "Completed"}
	if !ok {
		term.Reason, term.Message = "Error", out.String() // FallbackToLogsOnError
	}
	pod.Status = corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{{Name: c.Name, Image: c.Image, ImageID: c.Image,
		State: corev1.ContainerState{Terminated: term}}}}
	if !ok {
		pod.Status.Phase = corev1.PodFailed
	}
	if err := k8s.Status().Update(ctx, pod); err != nil {
		t.Fatal(err)
	}

	now := metav1.Now()
	job.Status.StartTime = &now
	cond := func(ty batchv1.JobConditionType, reason string) batchv1.JobCondition {
		return batchv1.JobCondition{Type: ty, Status: corev1.ConditionTrue, Reason: reason, LastProbeTime: now, LastTransitionTime: now}
	}
	if ok {
		job.Status.Succeeded, job.Status.CompletionTime = 1, &now
		job.Status.Conditions = []batchv1.JobCondition{cond(batchv1.JobSuccessCriteriaMet, "CompletionsReached"), cond(batchv1.JobComplete, "CompletionsReached")}
	} else {
		job.Status.Failed = 1
		job.Status.Conditions = []batchv1.JobCondition{cond(batchv1.JobFailureTarget, "BackoffLimitExceeded"), cond(batchv1.JobFailed, "BackoffLimitExceeded")}
	}
	if err := k8s.Status().Update(ctx, job); err != nil {
		t.Fatal(err)
	}
	return ok, out.String()
}

// dataDir0 is the data dir the Job mounts pod 0's claim at.
const dataDir0 = dataDir

// TestBootstrapFromBackup: a KVStore created from a backup gets pod 0's
// claim and a restore Job before any StatefulSet; the Job's command,
// run for real, restores a good backup (Restored, then the StatefulSet
// adopts the claim), and refuses a wrong sha256 or a volume holding data
// (Failed with the cause, no StatefulSet, the volume as it was).
func TestBootstrapFromBackup(t *testing.T) {
	// The source claim is a directory; the S3 source is SeaweedFS, the
	// credentials passed as the kubelet would from the Secret.
	source, m := backupForRestore(t)
	pvc := &kvv1.BackupDestination{PersistentVolumeClaim: &kvv1.PVCDestination{ClaimName: "backups"}}
	s3 := harness.StartS3(t)
	s3.MakeBucket(t, "backups")
	s3Src := &kvv1.BackupDestination{S3: &kvv1.S3Destination{Bucket: "backups", Prefix: "old", Endpoint: s3.Endpoint, Region: s3.Region,
		BucketLookup: "path", CredentialsSecret: "s3-creds"}}
	creds := map[string]string{backup.EnvAccessKey: s3.Admin.AccessKey, backup.EnvSecretKey: s3.Admin.SecretKey}
	s3Dest, err := backup.New(backup.Location{Scheme: "s3", Bucket: "backups", Prefix: "old"},
		backup.S3Options{Endpoint: s3.Endpoint, Region: s3.Region, BucketLookup: "path", Getenv: func(k string) string { return creds[k] }})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(source, m.Object))
	if err != nil {
		t.Fatal(err)
	}
	ms3, err := backup.Write(ctx, s3Dest, f, backup.Info{})
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		src     *kvv1.BackupDestination
		name    string
		sha     string
		prepare func(t *testing.T, dataDir string)
		ok      bool
		wantMsg string
	}{
		"good backup":         {src: pvc, name: m.Name, sha: m.SHA256, ok: true},
		"good backup from s3": {src: s3Src, name: ms3.Name, sha: ms3.SHA256, ok: true},
		"bad sha256":          {src: pvc, name: m.Name, sha: strings.Repeat("0", 64), wantMsg: "corrupt backup"},
		"volume holds data": {src: pvc, name: m.Name, sha: m.SHA256, prepare: func(t *testing.T, dataDir string) {
			if err := os.WriteFile(filepath.Join(dataDir, "kv.db"), []byte("old data"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, wantMsg: "kvstore: data dir is not empty"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ns := newNamespace(t)
			kv := &kvv1.KVStore{ObjectMeta: metav1.ObjectMeta{Name: "rs", Namespace: ns}}
			kv.Spec.TLS.Pods = "Disabled"
			kv.Spec.Bootstrap = &kvv1.BootstrapSpec{FromBackup: &kvv1.BootstrapFromBackup{Source: tc.src, Name: tc.name, SHA256: tc.sha}}
			if err := k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s3-creds", Namespace: ns},
				Data: map[string][]byte{S3AccessKeyIDKey: []byte(s3.Admin.AccessKey), S3SecretAccessKeyKey: []byte(s3.Admin.SecretKey)}}); err != nil {
				t.Fatal(err)
			}
			create(t, kv)

			job := &batchv1.Job{}
			eventually(t, "the restore Job", func() error { return get(ns, restoreJobName(kv), job) })
			claim := &corev1.PersistentVolumeClaim{}
			if err := get(ns, dataClaimName(kv, 0), claim); err != nil {
				t.Fatalf("pod 0's claim: %v", err)
			}
			eventually(t, "status.bootstrap Restoring", func() error {
				if err := get(ns, kv.Name, kv); err != nil {
					return err
				}
				if b := kv.Status.Bootstrap; b == nil || b.Phase != kvv1.BootstrapRestoring || b.SHA256 != tc.sha || b.JobName != job.Name {
					return fmt.Errorf("status.bootstrap %+v", b)
				}
				return nil
			})
			if err := get(ns, kv.Name, &appsv1.StatefulSet{}); !apierrors.IsNotFound(err) {
				t.Fatalf("a StatefulSet exists while the restore runs: %v", err)
			}

			dataDir := t.TempDir()
			if tc.prepare != nil {
				tc.prepare(t, dataDir)
			}
			before := harness.ListDir(t, dataDir)
			ok, out := playRestoreJob(t, ns, job, dataDir, source)
			if ok != tc.ok {
				t.Fatalf("the Job's command succeeded: %v, want %v:\n%s", ok, tc.ok, out)
			}

			if tc.ok {
				eventually(t, "Restored and the StatefulSet", func() error {
					if err := get(ns, kv.Name, kv); err != nil {
						return err
					}
					if b := kv.Status.Bootstrap; b == nil || b.Phase != kvv1.BootstrapRestored {
						return fmt.Errorf("status.bootstrap %+v", b)
					}
					return get(ns, kv.Name, &appsv1.StatefulSet{})
				})
				for _, f := range []string{"kv.db", "raft"} {
					if _, err := os.Stat(filepath.Join(dataDir, f)); err != nil {
						t.Errorf("the restore left no %s: %v", f, err)
					}
				}
				return
			}
			eventually(t, "Failed with the cause", func() error {
				if err := get(ns, kv.Name, kv); err != nil {
					return err
				}
				b := kv.Status.Bootstrap
				if b == nil || b.Phase != kvv1.BootstrapFailed || !strings.Contains(b.Message, tc.wantMsg) {
					return fmt.Errorf("status.bootstrap %+v, want Failed with %q", b, tc.wantMsg)
				}
				c := meta.FindStatusCondition(kv.Status.Conditions, kvv1.ConditionDegraded)
				if c == nil || c.Status != metav1.ConditionTrue || c.Reason != ReasonBootstrapFailed || !strings.Contains(c.Message, tc.wantMsg) {
					return fmt.Errorf("Degraded %+v", c)
				}
				return nil
			})
			t.Logf("status.bootstrap.message: %s", kv.Status.Bootstrap.Message)
			eventually(t, "a Warning BootstrapFailed event on the KVStore", func() error {
				list := &eventsv1.EventList{}
				if err := k8s.List(ctx, list, client.InNamespace(ns)); err != nil {
					return err
				}
				for _, e := range list.Items {
					if e.Regarding.Kind == "KVStore" && e.Regarding.Name == kv.Name && e.Type == corev1.EventTypeWarning && e.Reason == ReasonBootstrapFailed {
						return nil
					}
				}
				return fmt.Errorf("%d events, none Warning %s", len(list.Items), ReasonBootstrapFailed)
			})
			// The reconciles after the failure (the Job's and the status's
			// watch events) create no StatefulSet either.
			for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); <-time.After(100 * time.Millisecond) {
				if err := get(ns, kv.Name, &appsv1.StatefulSet{}); !apierrors.IsNotFound(err) {
					t.Fatalf("a StatefulSet after the restore failed: %v", err)
				}
			}
			if after := harness.ListDir(t, dataDir); !reflect.DeepEqual(after, before) {
				t.Errorf("the volume changed (-before +after):\n- %v\n+ %v", before, after)
			}
		})
	}
}
