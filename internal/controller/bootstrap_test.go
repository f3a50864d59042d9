package controller

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kvv1 "kvstore.dev/kvstore/api/v1"
)

const testSHA = "9f2c000000000000000000000000000000000000000000000000000000000001"

var (
	s3Dest  = kvv1.BackupDestination{S3: &kvv1.S3Destination{Bucket: "backups", Prefix: "kv", Endpoint: "https://s3.example.com", CredentialsSecret: "creds", CA: &kvv1.SecretKeyRef{Name: "s3-ca", Key: "ca.crt"}}}
	pvcDest = kvv1.BackupDestination{PersistentVolumeClaim: &kvv1.PVCDestination{ClaimName: "backups", SubPath: "kv"}}
)

// fromSource is a KVStore to restore name of pvcDest.
func fromSource(kv *kvv1.KVStore) {
	kv.Spec.Bootstrap = &kvv1.BootstrapSpec{FromBackup: &kvv1.BootstrapFromBackup{Source: &pvcDest, Name: "kvstore-20261202T173000.123Z", SHA256: testSHA}}
}

func fromBackupName(kv *kvv1.KVStore) {
	kv.Spec.Bootstrap = &kvv1.BootstrapSpec{FromBackup: &kvv1.BootstrapFromBackup{BackupName: "nightly"}}
}

func withBootstrapPhase(ph kvv1.BootstrapPhase, msg string) func(*kvv1.KVStore) {
	return func(kv *kvv1.KVStore) { kv.Status.Bootstrap = &kvv1.BootstrapStatus{Phase: ph, Message: msg} }
}

func backupIn(phase kvv1.BackupPhase, dest *kvv1.BackupDestination) *kvv1.KVStoreBackup {
	b := &kvv1.KVStoreBackup{ObjectMeta: metav1.ObjectMeta{Name: "nightly", Namespace: "ns"},
		Spec:   kvv1.KVStoreBackupSpec{KVStoreName: "old", Destination: dest},
		Status: kvv1.KVStoreBackupStatus{Phase: phase, Message: "AccessDenied"}}
	if phase == kvv1.BackupSucceeded {
		b.Status.BackupName, b.Status.SHA256, b.Status.DestinationURI = "kvstore-20261203T000000Z", testSHA, "s3://backups/kv/kvstore-20261203T000000Z.db"
	}
	return b
}

func restoreJobIn(kv *kvv1.KVStore, cond batchv1.JobConditionType) *batchv1.Job {
	j := desiredRestoreJob(kv, testOpts, restoreSource{dest: pvcDest, name: "x", sha256: testSHA})
	if cond != "" {
		j.Status.Conditions = []batchv1.JobCondition{{Type: cond, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit"}}
	}
	return j
}

// TestPlanBootstrap: the source is resolved, the claim and Job are
// planned once, the Job's outcome becomes the phase, and a KVStore that
// was restored or has a StatefulSet is never restored.
func TestPlanBootstrap(t *testing.T) {
	type want struct {
		step      bootstrapStep
		phase     kvv1.BootstrapPhase // "" : status.bootstrap left as it is
		claim     bool
		job       bool
		reason    string // the problem's, "" for none
		msg       string // in the status message, or in the problem's
		sourceURI string
	}
	cases := map[string]struct {
		edits []func(*kvv1.KVStore)
		sts   bool
		in    func(kv *kvv1.KVStore) *bootstrapObserved
		want  want
	}{
		"no bootstrap": {nil, false, nil, want{step: bootstrapDone}},
		"source: claim and Job": {[]func(*kvv1.KVStore){fromSource}, false, func(*kvv1.KVStore) *bootstrapObserved { return &bootstrapObserved{} },
			want{step: bootstrapWait, phase: kvv1.BootstrapRestoring, claim: true, job: true, sourceURI: "pvc://backups/kv/kvstore-20261202T173000.123Z.db"}},
		"claim exists: Job only": {[]func(*kvv1.KVStore){fromSource}, false, func(kv *kvv1.KVStore) *bootstrapObserved {
			return &bootstrapObserved{claim: desiredDataClaim(kv, 0)}
		}, want{step: bootstrapWait, phase: kvv1.BootstrapRestoring, job: true, sourceURI: "pvc://backups/kv/kvstore-20261202T173000.123Z.db"}},
		"already restored": {[]func(*kvv1.KVStore){fromSource, withBootstrapPhase(kvv1.BootstrapRestored, "")}, false,
			func(*kvv1.KVStore) *bootstrapObserved { return &bootstrapObserved{} }, want{step: bootstrapDone}},
		"statefulset exists: never restore": {[]func(*kvv1.KVStore){fromSource}, true,
			func(*kvv1.KVStore) *bootstrapObserved { return &bootstrapObserved{} }, want{step: bootstrapDone}},
		"restoring with a statefulset: the lost Restored": {[]func(*kvv1.KVStore){fromSource, withBootstrapPhase(kvv1.BootstrapRestoring, "")}, true,
			func(*kvv1.KVStore) *bootstrapObserved { return &bootstrapObserved{} }, want{step: bootstrapDone, phase: kvv1.BootstrapRestored}},
		"failed stays failed": {[]func(*kvv1.KVStore){fromSource, withBootstrapPhase(kvv1.BootstrapFailed, "checksum mismatch")}, false,
			func(*kvv1.KVStore) *bootstrapObserved { return &bootstrapObserved{} }, want{step: bootstrapFail, reason: ReasonBootstrapFailed, msg: "checksum mismatch"}},
		"both set": {[]func(*kvv1.KVStore){fromSource, func(kv *kvv1.KVStore) { kv.Spec.Bootstrap.FromBackup.BackupName = "nightly" }}, false,
			func(*kvv1.KVStore) *bootstrapObserved { return &bootstrapObserved{} },
			want{step: bootstrapFail, phase: kvv1.BootstrapFailed, reason: ReasonBootstrapFailed, msg: "exactly one of backupName and source"}},
		"backup missing": {[]func(*kvv1.KVStore){fromBackupName}, false, func(*kvv1.KVStore) *bootstrapObserved { return &bootstrapObserved{} },
			want{step: bootstrapFail, phase: kvv1.BootstrapFailed, reason: ReasonBootstrapFailed, msg: "KVStoreBackup nightly (spec.bootstrap.fromBackup.backupName) does not exist"}},
		"backup running: wait": {[]func(*kvv1.KVStore){fromBackupName}, false, func(*kvv1.KVStore) *bootstrapObserved {
			return &bootstrapObserved{backup: backupIn(kvv1.BackupRunning, &s3Dest)}
		}, want{step: bootstrapWait, reason: ReasonBackupNotReady, msg: "has not succeeded yet"}},
		"backup failed": {[]func(*kvv1.KVStore){fromBackupName}, false, func(*kvv1.KVStore) *bootstrapObserved {
			return &bootstrapObserved{backup: backupIn(kvv1.BackupFailed, &s3Dest)}
		}, want{step: bootstrapFail, phase: kvv1.BootstrapFailed, reason: ReasonBootstrapFailed, msg: "failed (AccessDenied)"}},
		"backup succeeded, its own destination": {[]func(*kvv1.KVStore){fromBackupName}, false, func(*kvv1.KVStore) *bootstrapObserved {
			return &bootstrapObserved{backup: backupIn(kvv1.BackupSucceeded, &s3Dest)}
		}, want{step: bootstrapWait, phase: kvv1.BootstrapRestoring, claim: true, job: true, sourceURI: "s3://backups/kv/kvstore-20261203T000000Z.db"}},
		"backup succeeded, its KVStore's destination": {[]func(*kvv1.KVStore){fromBackupName}, false, func(*kvv1.KVStore) *bootstrapObserved {
			old := newKV(func(k *kvv1.KVStore) { k.Name = "old"; k.Spec.Backup = &kvv1.BackupSpec{Destination: s3Dest} })
			return &bootstrapObserved{backup: backupIn(kvv1.BackupSucceeded, nil), backupKV: old}
		}, want{step: bootstrapWait, phase: kvv1.BootstrapRestoring, claim: true, job: true, sourceURI: "s3://backups/kv/kvstore-20261203T000000Z.db"}},
		"backup succeeded, no destination left": {[]func(*kvv1.KVStore){fromBackupName}, false, func(*kvv1.KVStore) *bootstrapObserved {
			return &bootstrapObserved{backup: backupIn(kvv1.BackupSucceeded, nil)}
		}, want{step: bootstrapFail, phase: kvv1.BootstrapFailed, reason: ReasonBootstrapFailed, msg: "has no spec.destination"}},
		"backup's destination moved": {[]func(*kvv1.KVStore){fromBackupName}, false, func(*kvv1.KVStore) *bootstrapObserved {
			d := s3Dest.DeepCopy()
			d.S3.Prefix = "elsewhere"
			return &bootstrapObserved{backup: backupIn(kvv1.BackupSucceeded, d)}
		}, want{step: bootstrapFail, phase: kvv1.BootstrapFailed, reason: ReasonBootstrapFailed, msg: "was written to s3://backups/kv/kvstore-20261203T000000Z.db"}},
		"job running": {[]func(*kvv1.KVStore){fromSource}, false, func(kv *kvv1.KVStore) *bootstrapObserved {
			return &bootstrapObserved{claim: desiredDataClaim(kv, 0), job: restoreJobIn(kv, "")}
		}, want{step: bootstrapWait, phase: kvv1.BootstrapRestoring, sourceURI: "pvc://backups/kv/kvstore-20261202T173000.123Z.db"}},
		"job complete: restored": {[]func(*kvv1.KVStore){fromSource}, false, func(kv *kvv1.KVStore) *bootstrapObserved {
			return &bootstrapObserved{claim: desiredDataClaim(kv, 0), job: restoreJobIn(kv, batchv1.JobComplete)}
		}, want{step: bootstrapDone, phase: kvv1.BootstrapRestored, sourceURI: "pvc://backups/kv/kvstore-20261202T173000.123Z.db"}},
		"job failed: the container's message": {[]func(*kvv1.KVStore){fromSource}, false, func(kv *kvv1.KVStore) *bootstrapObserved {
			return &bootstrapObserved{claim: desiredDataClaim(kv, 0), job: restoreJobIn(kv, batchv1.JobFailed),
				message: "kvstore: restore: backup: corrupt backup: x has SHA-256 a, its manifest says b\n"}
		}, want{step: bootstrapFail, phase: kvv1.BootstrapFailed, reason: ReasonBootstrapFailed, msg: "failed: kvstore: restore: backup: corrupt backup", sourceURI: "pvc://backups/kv/kvstore-20261202T173000.123Z.db"}},
		"job failed, no message: the Job's": {[]func(*kvv1.KVStore){fromSource}, false, func(kv *kvv1.KVStore) *bootstrapObserved {
			return &bootstrapObserved{claim: desiredDataClaim(kv, 0), job: restoreJobIn(kv, batchv1.JobFailed)}
		}, want{step: bootstrapFail, phase: kvv1.BootstrapFailed, reason: ReasonBootstrapFailed, msg: "BackoffLimitExceeded", sourceURI: "pvc://backups/kv/kvstore-20261202T173000.123Z.db"}},
		"job not ours": {[]func(*kvv1.KVStore){fromSource}, false, func(kv *kvv1.KVStore) *bootstrapObserved {
			j := restoreJobIn(kv, "")
			j.OwnerReferences = nil
			return &bootstrapObserved{job: j}
		}, want{step: bootstrapWait, reason: "ChildConflict", msg: "not controlled by this KVStore"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			kv := newKV(func(kv *kvv1.KVStore) {
				for _, e := range tc.edits {
					e(kv)
				}
			})
			var in *bootstrapObserved
			if tc.in != nil && mayRestore(kv, tc.sts) {
				in = tc.in(kv)
			}
			p := planBootstrap(kv, tc.sts, in, testOpts)
			got := want{step: p.step, claim: p.claim != nil, job: p.job != nil}
			if p.status != nil {
				got.phase, got.sourceURI = p.status.Phase, p.status.SourceURI
			}
			if p.problem != nil {
				got.reason = p.problem.reason
			}
			if tc.want.msg != "" {
				text := ""
				if p.status != nil {
					text = p.status.Message
				}
				if p.problem != nil {
					text += " | " + p.problem.message
				}
				if !strings.Contains(text, tc.want.msg) {
					t.Errorf("message %q, want it to contain %q", text, tc.want.msg)
				}
				got.msg = tc.want.msg
			}
			if got != tc.want {
				t.Errorf("plan (-want +got):\n- %+v\n+ %+v", tc.want, got)
			}
			if p.job != nil && p.job.Name != "kv-restore" {
				t.Errorf("job name %q", p.job.Name)
			}
		})
	}
}

// TestDataClaimMatchesTemplate: the claim made for pod 0 before the
// StatefulSet has the name and spec its volumeClaimTemplate gives it, so
// the StatefulSet adopts it.
func TestDataClaimMatchesTemplate(t *testing.T) {
	for name, edit := range map[string]func(*kvv1.KVStore){
		"defaults": nil,
		"class and size": func(kv *kvv1.KVStore) {
			kv.Spec.Storage.Size, kv.Spec.Storage.StorageClassName = ptr(resource.MustParse("5Gi")), ptr("fast")
		},
	} {
		t.Run(name, func(t *testing.T) {
			kv := newKV(edit)
			sts := desiredStatefulSet(kv, testOpts, "h", 3)
			tmpl := sts.Spec.VolumeClaimTemplates[0]
			var spec corev1.PersistentVolumeClaimSpec
			b, _ := json.Marshal(tmpl.Spec)
			if err := json.Unmarshal(b, &spec); err != nil {
				t.Fatal(err)
			}
			claim := desiredDataClaim(kv, 0)
			if wantName := *tmpl.Name + "-" + *sts.Name + "-0"; claim.Name != wantName {
				t.Errorf("claim %s, the StatefulSet's pod 0 uses %s", claim.Name, wantName)
			}
			if !reflect.DeepEqual(claim.Spec, spec) || !reflect.DeepEqual(claim.Labels, tmpl.Labels) {
				t.Errorf("claim (-template +claim):\n- %+v %v\n+ %+v %v", spec, tmpl.Labels, claim.Spec, claim.Labels)
			}
			if len(claim.OwnerReferences) != 0 {
				t.Errorf("claim has owners %v; the StatefulSet's claims have none", claim.OwnerReferences)
			}
		})
	}
}

// TestRestoreJob: the Job runs the cluster-aware restore as pod 0 with
// the expected sha256, locked down, credentials from the Secret in the
// environment only, the source claim read-only.
func TestRestoreJob(t *testing.T) {
	kv := newKV(nil)
	for name, src := range map[string]restoreSource{
		"s3":  {dest: s3Dest, name: "kvstore-1", sha256: testSHA},
		"pvc": {dest: pvcDest, name: "kvstore-1", sha256: testSHA},
	} {
		t.Run(name, func(t *testing.T) {
			j := desiredRestoreJob(kv, testOpts, src)
			c := j.Spec.Template.Spec.Containers[0]
			args := strings.Join(c.Args, " ")
			for _, want := range []string{"restore ", "--sha256=" + testSHA, "--backup=kvstore-1", "--data-dir=/data", "--node-id=kv-0",
				"--peer-advertise=kv-0.kv-peers.ns.svc.cluster.local:7000"} {
				if !strings.Contains(args, want) {
					t.Errorf("args %q lack %q", args, want)
				}
			}
			sc, psc := c.SecurityContext, j.Spec.Template.Spec.SecurityContext
			if *sc.RunAsUser != serverUID || !*sc.ReadOnlyRootFilesystem || *sc.AllowPrivilegeEscalation || sc.Capabilities.Drop[0] != "ALL" ||
				sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault || *psc.FSGroup != serverUID {
				t.Errorf("security context %+v / %+v", sc, psc)
			}
			if *j.Spec.BackoffLimit != 0 || j.Spec.ActiveDeadlineSeconds == nil || j.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
				t.Errorf("job spec %+v", j.Spec)
			}
			if !metav1IsControlledBy(j, kv) {
				t.Error("the Job is not owned by the KVStore")
			}
			if c.TerminationMessagePolicy != corev1.TerminationMessageFallbackToLogsOnError {
				t.Errorf("termination message policy %q", c.TerminationMessagePolicy)
			}
			mounts := map[string]corev1.VolumeMount{}
			for _, m := range c.VolumeMounts {
				mounts[m.MountPath] = m
			}
			vols := map[string]corev1.Volume{}
			for _, v := range j.Spec.Template.Spec.Volumes {
				vols[v.Name] = v
			}
			if m, ok := mounts["/data"]; !ok || m.ReadOnly || vols[m.Name].PersistentVolumeClaim.ClaimName != "data-kv-0" {
				t.Errorf("data mount %+v", m)
			}
			switch name {
			case "s3":
				if !strings.Contains(args, "--from=s3://backups/kv") || !strings.Contains(args, "--s3-endpoint=https://s3.example.com") ||
					!strings.Contains(args, "--s3-ca-file="+restoreS3CADir+"/ca.crt") || !mounts[restoreS3CADir].ReadOnly {
					t.Errorf("s3 args %q, mounts %v", args, mounts)
				}
				env := map[string]string{}
				for _, e := range c.Env {
					if e.Name == "GOMEMLIMIT" {
						continue // jobResources'
					}
					if e.Value != "" {
						t.Errorf("env %s has a literal value", e.Name)
					}
					env[e.Name] = e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
				}
				if env["AWS_ACCESS_KEY_ID"] != "creds/accessKeyID" || env["AWS_SECRET_ACCESS_KEY"] != "creds/secretAccessKey" {
					t.Errorf("credential env %v", env)
				}
			case "pvc":
				m := mounts[restoreSourceDir]
				if !strings.Contains(args, "--from=file:///backup-source/kv") || !m.ReadOnly || !vols[m.Name].PersistentVolumeClaim.ReadOnly ||
					vols[m.Name].PersistentVolumeClaim.ClaimName != "backups" {
					t.Errorf("pvc args %q, mount %+v", args, m)
				}
			}
		})
	}
}
