package controller

import (
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8slabels "k8s.io/apimachinery/pkg/labels"

	kvv1 "kvstore.dev/kvstore/api/v1"
	"kvstore.dev/kvstore/internal/backup"
	"kvstore.dev/kvstore/internal/config"
)

func TestBackupMaxRate(t *testing.T) {
	for name, tc := range map[string]struct {
		spec *kvv1.BackupSpec
		want int64
	}{
		"no spec.backup": {nil, backup.DefaultMaxRate},
		"unset":          {&kvv1.BackupSpec{}, backup.DefaultMaxRate},
		"no limit":       {&kvv1.BackupSpec{MaxRate: ptr[int64](0)}, 0},
		"32 MiB/s":       {&kvv1.BackupSpec{MaxRate: ptr[int64](32 << 20)}, 32 << 20},
	} {
		t.Run(name, func(t *testing.T) {
			kv := newKV(func(kv *kvv1.KVStore) { kv.Spec.Backup = tc.spec })
			if got := backupMaxRate(kv); got != tc.want {
				t.Errorf("backupMaxRate = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestDesiredBackupJob(t *testing.T) {
	b := &kvv1.KVStoreBackup{ObjectMeta: metav1.ObjectMeta{Name: "nightly", Namespace: "ns", UID: "b-uid"}}
	claim := &kvv1.PVCDestination{ClaimName: "backups", SubPath: "team/kv"}
	cases := map[string]struct {
		edit      func(*kvv1.KVStore)
		in        backupJobInputs
		image     string
		pull      corev1.PullPolicy
		wantArgs  []string // among the arguments
		noArgs    []string // prefixes that must not be among them
		deadline  int64
		caVolume  bool
		pullScrts int
	}{
		"pod TLS, defaults": {
			in:    backupJobInputs{claim: claim, source: "kv-1", timeout: time.Hour, maxRate: backup.DefaultMaxRate},
			image: "kvstore/kvstore:test",
			wantArgs: []string{"backup", "--server=https://kv-1.kv-peers.ns.svc.cluster.local:8080", "--destination=file:///backup/team/kv",
				"--result-file=/dev/termination-log", "--timeout=54m0s", "--max-rate=16777216", "--server-ca-file=/etc/kvstore-pod-ca/ca.crt"},
			noArgs:   []string{"--keep-last", "--max-age", "--token"},
			deadline: 3600, caVolume: true,
		},
		"no pod TLS, image, retention, root of the claim": {
			edit: func(kv *kvv1.KVStore) {
				kv.Spec.TLS.Pods = "Disabled"
				kv.Spec.Image, kv.Spec.ImagePullPolicy = "registry.example/kvstore:1.2", corev1.PullAlways
				kv.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "pull"}}
			},
			in:    backupJobInputs{claim: &kvv1.PVCDestination{ClaimName: "backups"}, source: "kv-0", timeout: 10 * time.Minute, retention: backup.Retention{KeepLast: 3, MaxAge: 30 * 24 * time.Hour}},
			image: "registry.example/kvstore:1.2", pull: corev1.PullAlways,
			wantArgs: []string{"--server=http://kv-0.kv-peers.ns.svc.cluster.local:8080", "--destination=file:///backup", "--keep-last=3", "--max-age=30d", "--timeout=9m0s", "--max-rate=0"},
			noArgs:   []string{"--server-ca-file", "--token"},
			deadline: 600, pullScrts: 1,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			kv := newKV(tc.edit)
			job := desiredBackupJob(kv, b, testOpts, tc.in)
			if job.Name != "nightly-backup" || job.Namespace != "ns" {
				t.Errorf("job %s/%s", job.Namespace, job.Name)
			}
			if len(job.OwnerReferences) != 1 || job.OwnerReferences[0].UID != "b-uid" || job.OwnerReferences[0].Kind != "KVStoreBackup" ||
				job.OwnerReferences[0].Controller == nil || !*job.OwnerReferences[0].Controller {
				t.Errorf("owner %+v, want the KVStoreBackup as controller", job.OwnerReferences)
			}
			if job.Annotations[BackupSourceAnnotation] != tc.in.source || !strings.HasPrefix(job.Annotations[BackupDestinationAnnotation], "pvc://") {
				t.Errorf("annotations %v", job.Annotations)
			}
			s := job.Spec
			if s.BackoffLimit == nil || *s.BackoffLimit != 0 || s.ActiveDeadlineSeconds == nil || *s.ActiveDeadlineSeconds != tc.deadline || s.TTLSecondsAfterFinished == nil {
				t.Errorf("backoffLimit %v, activeDeadlineSeconds %v (want %d), ttl %v", s.BackoffLimit, s.ActiveDeadlineSeconds, tc.deadline, s.TTLSecondsAfterFinished)
			}
			pod := s.Template.Spec
			// Not a server: no Service, PDB or StatefulSet selects it.
			if k8slabels.SelectorFromSet(selectorLabels(kv)).Matches(k8slabels.Set(s.Template.Labels)) {
				t.Errorf("the servers' selector matches the pod's labels %v", s.Template.Labels)
			}
			if job.Labels[ManagedByLabel] != FieldOwner {
				t.Errorf("labels %v: not in the manager's cache", job.Labels)
			}
			if pod.RestartPolicy != corev1.RestartPolicyNever || pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
				t.Errorf("restartPolicy %s, automount %v", pod.RestartPolicy, pod.AutomountServiceAccountToken)
			}
			ps := pod.SecurityContext
			if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot || *ps.RunAsUser != 65532 || *ps.FSGroup != 65532 ||
				ps.SeccompProfile == nil || ps.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("pod security context %+v", ps)
			}
			if len(pod.ImagePullSecrets) != tc.pullScrts {
				t.Errorf("imagePullSecrets %v", pod.ImagePullSecrets)
			}
			if len(pod.Containers) != 1 {
				t.Fatalf("%d containers", len(pod.Containers))
			}
			c := pod.Containers[0]
			if c.Image != tc.image || c.ImagePullPolicy != tc.pull {
				t.Errorf("image %s (%s), want %s (%s)", c.Image, c.ImagePullPolicy, tc.image, tc.pull)
			}
			sc := c.SecurityContext
			if sc == nil || !*sc.RunAsNonRoot || *sc.RunAsUser != 65532 || !*sc.ReadOnlyRootFilesystem || *sc.AllowPrivilegeEscalation ||
				!reflect.DeepEqual(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 ||
				sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("container security context %+v", sc)
			}
			// Requests (a ResourceQuota that requires them admits the
			// pod), a memory limit and GOMEMLIMIT under it, no CPU limit.
			if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() ||
				c.Resources.Limits.Memory().String() != "512Mi" || !c.Resources.Limits.Cpu().IsZero() {
				t.Errorf("resources %+v, want CPU and memory requests and a 512Mi memory limit only", c.Resources)
			}
			if !slices.Contains(c.Env, corev1.EnvVar{Name: "GOMEMLIMIT", Value: strconv.FormatInt((512<<20)/100*90, 10)}) {
				t.Errorf("env %+v lacks GOMEMLIMIT at 90%% of the limit", c.Env)
			}
			if c.TerminationMessagePath != "/dev/termination-log" || c.TerminationMessagePolicy != corev1.TerminationMessageFallbackToLogsOnError {
				t.Errorf("termination message %s, %s", c.TerminationMessagePath, c.TerminationMessagePolicy)
			}
			for _, a := range tc.wantArgs {
				if !slices.Contains(c.Args, a) {
					t.Errorf("args %q lack %q", c.Args, a)
				}
			}
			for _, a := range c.Args {
				for _, no := range tc.noArgs {
					if strings.HasPrefix(a, no) {
						t.Errorf("args %q have %q", c.Args, a)
					}
				}
			}
			// The token: from the auth Secret, in the environment only
			// (beside GOMEMLIMIT, checked above).
			if len(c.Env) != 2 || c.Env[0].Name != config.EnvAdminToken || c.Env[0].Value != "" || c.Env[0].ValueFrom == nil ||
				c.Env[0].ValueFrom.SecretKeyRef.Name != "kv-auth" || c.Env[0].ValueFrom.SecretKeyRef.Key != AuthTokenKey {
				t.Errorf("env %+v", c.Env)
			}
			vols := map[string]corev1.Volume{}
			for _, v := range pod.Volumes {
				vols[v.Name] = v
			}
			mounts := map[string]corev1.VolumeMount{}
			for _, m := range c.VolumeMounts {
				mounts[m.Name] = m
			}
			if v := vols["backup"]; v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != tc.in.claim.ClaimName || mounts["backup"].MountPath != "/backup" {
				t.Errorf("claim volume %+v, mount %+v", v, mounts["backup"])
			}
			v, ok := vols["pod-ca"]
			if ok != tc.caVolume {
				t.Fatalf("pod CA volume: %v, want %v", ok, tc.caVolume)
			}
			if ok {
				want := []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}
				if v.Secret == nil || v.Secret.SecretName != "kv-pod-tls" || !reflect.DeepEqual(v.Secret.Items, want) || !mounts["pod-ca"].ReadOnly {
					t.Errorf("pod CA volume %+v (want only ca.crt), mount %+v", v, mounts["pod-ca"])
				}
			}
			if len(vols) != len(mounts) {
				t.Errorf("volumes %v, mounts %v", vols, mounts)
			}
		})
	}
}

func TestBackupJobName(t *testing.T) {
	long := &kvv1.KVStoreBackup{ObjectMeta: metav1.ObjectMeta{Name: strings.Repeat("a", 52) + "-20261203120000"}}
	other := &kvv1.KVStoreBackup{ObjectMeta: metav1.ObjectMeta{Name: strings.Repeat("a", 52) + "-20261203130000"}}
	n, m := backupJobName(long), backupJobName(other)
	if len(n) > 63 || !strings.HasSuffix(n, "-backup") || n == m {
		t.Errorf("names %q, %q: want distinct, at most 63 characters", n, m)
	}
	if n := backupJobName(&kvv1.KVStoreBackup{ObjectMeta: metav1.ObjectMeta{Name: "b"}}); n != "b-backup" {
		t.Errorf("name %q", n)
	}
}

func TestCommandTimeout(t *testing.T) {
	for in, want := range map[time.Duration]time.Duration{time.Hour: 54 * time.Minute, time.Second: time.Second, 100 * time.Hour: 48 * time.Hour, 10 * time.Second: 9 * time.Second} {
		if got := commandTimeout(in); got != want {
			t.Errorf("commandTimeout(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestBackupJobOutcome(t *testing.T) {
	const sum = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	ok := backup.ResultOf(backup.Manifest{Name: "kvstore-20261203T120000.000Z", SHA256: sum, SizeBytes: 42, Revision: 9}, []backup.Manifest{{Name: "kvstore-20261201T120000.000Z"}}, nil)
	okJSON := string(ok.Encode())
	job := func(typ batchv1.JobConditionType, reason, msg string) *batchv1.Job {
		j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "b-backup"}}
		if typ != "" {
			j.Status.Conditions = []batchv1.JobCondition{{Type: typ, Status: corev1.ConditionTrue, Reason: reason, Message: msg}}
		}
		return j
	}
	pod := func(name string, age time.Duration, code int32, msg string) corev1.Pod {
		return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC).Add(-age))},
			Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "kvstore",
				State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Message: msg}}}}}}
	}
	running := corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "kvstore",
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}}}
	cases := map[string]struct {
		job  *batchv1.Job
		pods []corev1.Pod
		done bool
		name string   // the result's backup name, for a success
		msg  []string // in the failure's message
	}{
		"running":  {job: job("", "", ""), pods: []corev1.Pod{running}},
		"complete": {job: job(batchv1.JobComplete, "", ""), pods: []corev1.Pod{pod("p", 0, 0, okJSON)}, done: true, name: ok.Name},
		"failed with an error": {job: job(batchv1.JobFailed, "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
			pods: []corev1.Pod{pod("p", 0, 2, string(backup.Result{Error: "snapshot: connection refused"}.Encode()))}, done: true, msg: []string{"snapshot: connection refused"}},
		"the retention failed: the backup succeeded": {job: job(batchv1.JobFailed, "BackoffLimitExceeded", ""),
			pods: []corev1.Pod{pod("p", 0, 2, string(backup.ResultOf(backup.Manifest{Name: ok.Name, SHA256: sum, SizeBytes: 1}, nil, errStr("denied")).Encode()))}, done: true, name: ok.Name},
		"a truncated message": {job: job(batchv1.JobComplete, "", ""), pods: []corev1.Pod{pod("p", 0, 0, okJSON[:40])}, done: true,
			msg: []string{"b-backup completed without a valid result", "pod p", "exit code 0", "not a backup result", "termination message ends"}},
		"log lines (FallbackToLogsOnError)": {job: job(batchv1.JobFailed, "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
			pods: []corev1.Pod{pod("p", 0, 2, `{"level":"ERROR","msg":"x"}`+"\nbackup: invalid configuration: destination: is required")}, done: true,
			msg: []string{"BackoffLimitExceeded", "exit code 2", "destination: is required"}},
		"an empty message": {job: job(batchv1.JobFailed, "DeadlineExceeded", "Job was active longer than specified deadline"),
			pods: []corev1.Pod{pod("p", 0, 137, "")}, done: true, msg: []string{"DeadlineExceeded", "exit code 137", "empty"}},
		"no pod": {job: job(batchv1.JobFailed, "DeadlineExceeded", "Job was active longer than specified deadline"), done: true,
			msg: []string{"DeadlineExceeded", "no pod"}},
		"the newest pod counts": {job: job(batchv1.JobComplete, "", ""), pods: []corev1.Pod{pod("old", time.Hour, 1, "garbage"), pod("new", 0, 0, okJSON)}, done: true, name: ok.Name},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			o := backupJobOutcome(tc.job, tc.pods)
			if o.done != tc.done || o.result.Name != tc.name {
				t.Fatalf("outcome %+v; want done %v, name %q", o, tc.done, tc.name)
			}
			if tc.name != "" && o.message != "" {
				t.Errorf("a success with message %q", o.message)
			}
			for _, m := range tc.msg {
				if !strings.Contains(o.message, m) {
					t.Errorf("message %q lacks %q", o.message, m)
				}
			}
		})
	}
	if m := manifestOf(ok); m.Object != ok.Name+".db" || m.SHA256 != sum || m.Revision != 9 || m.SizeBytes != 42 {
		t.Errorf("manifestOf = %+v", m)
	}
	if u := pvcURI(&kvv1.PVCDestination{ClaimName: "c", SubPath: "a/b"}); u != "pvc://c/a/b" {
		t.Errorf("pvcURI = %s", u)
	}
}

type errStr string

func (e errStr) Error() string { return string(e) }
