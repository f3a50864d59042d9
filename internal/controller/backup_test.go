package controller

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/prometheus/client_golang/prometheus/testutil"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kvv1 "kvstore.dev/kvstore/api/v1"
	"kvstore.dev/kvstore/internal/backup"
	"kvstore.dev/kvstore/test/harness"
	"kvstore.dev/kvstore/wire"
)

// backupServers maps a test namespace to its server processes, standing in
// for the KVStore's pods: "" is the client Service, else a pod name.
var backupServers sync.Map // namespace -> map[string]string

func backupURL(kv *kvv1.KVStore, pod string) string {
	if m, ok := backupServers.Load(kv.Namespace); ok {
		if u, ok := m.(map[string]string)[pod]; ok {
			return u
		}
	}
	return "http://127.0.0.1:1"
}

func backupServiceURL(kv *kvv1.KVStore) string         { return backupURL(kv, "") }
func backupPodURL(kv *kvv1.KVStore, pod string) string { return backupURL(kv, pod) }

func TestPlanBackup(t *testing.T) {
	s3 := &kvv1.BackupDestination{S3: &kvv1.S3Destination{Bucket: "own", CredentialsSecret: "c"}}
	kvS3 := kvv1.BackupDestination{S3: &kvv1.S3Destination{Bucket: "kvs", CredentialsSecret: "c"}}
	pvc := &kvv1.BackupDestination{PersistentVolumeClaim: &kvv1.PVCDestination{ClaimName: "c", SubPath: "kv"}}
	kv := func(d *kvv1.BackupDestination) *kvv1.KVStore {
		k := &kvv1.KVStore{ObjectMeta: metav1.ObjectMeta{Name: "kv", Namespace: "ns"}}
		if d != nil {
			k.Spec.Backup = &kvv1.BackupSpec{Destination: *d}
		}
		return k
	}
	cases := map[string]struct {
		phase  kvv1.BackupPhase
		own    *kvv1.BackupDestination
		kv     *kvv1.KVStore
		job    *batchv1.Job
		step   backupStep
		bucket string
		claim  string
		msg    string
	}{
		"new, own destination":           {own: s3, kv: kv(&kvS3), step: backupRun, bucket: "own"},
		"pending, the KVStore's":         {phase: kvv1.BackupPending, kv: kv(&kvS3), step: backupRun, bucket: "kvs"},
		"no destination anywhere":        {kv: kv(nil), step: backupFail, msg: "spec.backup.destination"},
		"no KVStore":                     {own: s3, step: backupFail, msg: "spec.kvstoreName"},
		"pvc runs":                       {own: pvc, kv: kv(nil), step: backupRun, claim: "c"},
		"the KVStore's pvc runs":         {kv: kv(pvc), step: backupRun, claim: "c"},
		"running pvc with its Job":       {phase: kvv1.BackupRunning, own: pvc, kv: kv(nil), job: &batchv1.Job{}, step: backupWaitJob},
		"running pvc, Job gone":          {phase: kvv1.BackupRunning, own: pvc, kv: kv(nil), step: backupFail, msg: "Job b-backup is gone"},
		"running KVStore's pvc, gone":    {phase: kvv1.BackupRunning, kv: kv(pvc), step: backupFail, msg: "Job b-backup is gone"},
		"running with its Job, any dest": {phase: kvv1.BackupRunning, own: s3, kv: kv(nil), job: &batchv1.Job{}, step: backupWaitJob},
		"succeeded is done":              {phase: kvv1.BackupSucceeded, own: s3, kv: kv(nil), step: backupDone},
		"failed is done":                 {phase: kvv1.BackupFailed, kv: nil, step: backupDone},
		"running was interrupted":        {phase: kvv1.BackupRunning, own: s3, kv: kv(nil), step: backupInterrupted, msg: "stopped"},
		"the KVStore's, without its S3":  {kv: kv(&kvv1.BackupDestination{}), step: backupFail, msg: "no destination"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			b := &kvv1.KVStoreBackup{ObjectMeta: metav1.ObjectMeta{Name: "b", Namespace: "ns"},
				Spec: kvv1.KVStoreBackupSpec{KVStoreName: "kv", Destination: tc.own}, Status: kvv1.KVStoreBackupStatus{Phase: tc.phase}}
			p := planBackup(b, tc.kv, tc.job)
			if p.step != tc.step {
				t.Fatalf("step %d, want %d (%+v)", p.step, tc.step, p)
			}
			if tc.bucket != "" && (p.destination == nil || p.destination.S3.Bucket != tc.bucket) {
				t.Errorf("destination %+v, want bucket %s", p.destination, tc.bucket)
			}
			if tc.claim != "" && (p.destination == nil || p.destination.PersistentVolumeClaim.ClaimName != tc.claim) {
				t.Errorf("destination %+v, want claim %s", p.destination, tc.claim)
			}
			if !strings.Contains(p.message, tc.msg) {
				t.Errorf("message %q does not name %q", p.message, tc.msg)
			}
		})
	}
}

func TestPickSnapshotMember(t *testing.T) {
	node := func(id, state string, commit, applied uint64) wire.Member {
		return wire.Member{ID: id, Status: &wire.NodeStatus{ID: id, State: state, CommitIndex: commit, AppliedIndex: applied}}
	}
	cases := map[string]struct {
		view wire.ClusterStatus
		want string
	}{
		"a caught-up follower, lowest id": {wire.ClusterStatus{LeaderID: "a", Members: []wire.Member{
			node("a", wire.StateLeader, 1000, 1000), node("c", wire.StateFollower, 990, 990), node("b", wire.StateFollower, 1000, 1000)}}, "b"},
		"a lagging follower is skipped": {wire.ClusterStatus{LeaderID: "a", Members: []wire.Member{
			node("a", wire.StateLeader, 1000, 1000), node("b", wire.StateFollower, 900, 900), node("c", wire.StateFollower, 1000, 999)}}, "c"},
		"no follower caught up: the leader": {wire.ClusterStatus{LeaderID: "a", Members: []wire.Member{
			node("a", wire.StateLeader, 1000, 1000), node("b", wire.StateFollower, 500, 500), {ID: "c", Error: "timeout"}}}, "a"},
		"a candidate is no follower": {wire.ClusterStatus{LeaderID: "a", Members: []wire.Member{
			node("a", wire.StateLeader, 10, 10), node("b", wire.StateCandidate, 10, 10)}}, "a"},
		"single node":            {wire.ClusterStatus{LeaderID: "a", Members: []wire.Member{node("a", wire.StateLeader, 3, 3)}}, "a"},
		"leader unknown: nobody": {wire.ClusterStatus{Members: []wire.Member{node("b", wire.StateFollower, 3, 3)}}, ""},
	}
	for name, tc := range cases {
		if got := pickSnapshotMember(tc.view); got != tc.want {
			t.Errorf("%s: %q, want %q", name, got, tc.want)
		}
	}
}

func TestS3Options(t *testing.T) {
	d := &kvv1.S3Destination{Bucket: "b", Endpoint: "http://s3:9000", BucketLookup: "path", CredentialsSecret: "creds"}
	o, err := s3Options(d, map[string][]byte{S3AccessKeyIDKey: []byte("ak\n"), S3SecretAccessKeyKey: []byte("sk"), S3SessionTokenKey: []byte("tok")}, []byte("PEM"))
	if err != nil {
		t.Fatal(err)
	}
	if o.Getenv(backup.EnvAccessKey) != "ak" || o.Getenv(backup.EnvSecretKey) != "sk" || o.Getenv(backup.EnvSessionToken) != "tok" || string(o.CAPEM) != "PEM" || o.Endpoint != d.Endpoint {
		t.Errorf("options %+v", o)
	}
	if _, err := s3Options(d, map[string][]byte{S3AccessKeyIDKey: []byte("ak")}, nil); err == nil || !strings.Contains(err.Error(), "creds") {
		t.Errorf("a missing secret key: %v", err)
	}
	d.BucketLookup = "sideways"
	if _, err := s3Options(d, map[string][]byte{S3AccessKeyIDKey: []byte("ak"), S3SecretAccessKeyKey: []byte("sk")}, nil); !errors.Is(err, backup.ErrInvalid) {
		t.Errorf("a bad bucket lookup: %v", err)
	}
}

func TestKVStatusAfterBackup(t *testing.T) {
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	kv := &kvv1.KVStore{ObjectMeta: metav1.ObjectMeta{Name: "kv", Generation: 2}}
	at := func(d time.Duration) *metav1.Time { t := metav1.NewTime(now.Add(d)); return &t }
	ok := &kvv1.KVStoreBackup{ObjectMeta: metav1.ObjectMeta{Name: "b1"}, Status: kvv1.KVStoreBackupStatus{Phase: kvv1.BackupSucceeded,
		CompletionTime: at(0), DestinationURI: "s3://x/kvstore-1.db", Revision: 7, SizeBytes: 100, SHA256: "ab"}}
	bad := &kvv1.KVStoreBackup{ObjectMeta: metav1.ObjectMeta{Name: "b2"}, Status: kvv1.KVStoreBackupStatus{Phase: kvv1.BackupFailed, Message: "NoSuchBucket"}}
	available := metav1.Condition{Type: kvv1.ConditionAvailable, Status: metav1.ConditionTrue, Reason: "QuorumReady"}

	st := kvStatusAfterBackup(kvv1.KVStoreStatus{Conditions: []metav1.Condition{available}}, kv, ok, now)
	if st.LastBackup == nil || st.LastBackup.Name != "b1" || st.LastBackup.Revision != 7 || st.LastBackup.SHA256 != "ab" {
		t.Fatalf("lastBackup %+v", st.LastBackup)
	}
	if c := meta.FindStatusCondition(st.Conditions, kvv1.ConditionLastBackupSucceeded); c == nil || c.Status != metav1.ConditionTrue || c.Reason != ReasonBackupSucceeded {
		t.Fatalf("condition %+v", c)
	}
	if meta.FindStatusCondition(st.Conditions, kvv1.ConditionAvailable) == nil {
		t.Fatal("the other conditions were dropped")
	}
	// A failure keeps the last success and turns the condition False.
	st = kvStatusAfterBackup(st, kv, bad, now.Add(time.Hour))
	if st.LastBackup == nil || st.LastBackup.Name != "b1" {
		t.Fatalf("lastBackup after a failure %+v", st.LastBackup)
	}
	if c := meta.FindStatusCondition(st.Conditions, kvv1.ConditionLastBackupSucceeded); c == nil || c.Status != metav1.ConditionFalse || c.Reason != ReasonBackupFailed || !strings.Contains(c.Message, "NoSuchBucket") {
		t.Fatalf("condition after a failure %+v", c)
	}
	// An older success finishing late does not replace a newer one.
	older := ok.DeepCopy()
	older.Name, older.Status.CompletionTime = "b0", at(-time.Hour)
	if st = kvStatusAfterBackup(st, kv, older, now); st.LastBackup.Name != "b1" {
		t.Errorf("an older backup replaced lastBackup: %+v", st.LastBackup)
	}
}

// TestBackupToS3 runs KVStoreBackups against two real server processes
// (standing in for the pods) and a real S3 server (SeaweedFS).
func TestBackupToS3(t *testing.T) {
	s3 := harness.StartS3(t)
	s3.MakeBucket(t, "backups")
	ns := newNamespace(t)
	kv := &kvv1.KVStore{ObjectMeta: metav1.ObjectMeta{Name: "bk", Namespace: ns}}
	kv.Spec.TLS.Pods = "Disabled"
	kv.Spec.Backup = &kvv1.BackupSpec{Destination: kvv1.BackupDestination{S3: &kvv1.S3Destination{
		Bucket: "backups", Prefix: "team/bk", Endpoint: s3.Endpoint, Region: s3.Region, BucketLookup: "path", CredentialsSecret: "s3-creds"}}}
	create(t, kv)
	if err := k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s3-creds", Namespace: ns},
		Data: map[string][]byte{S3AccessKeyIDKey: []byte(s3.Admin.AccessKey), S3SecretAccessKeyKey: []byte(s3.Admin.SecretKey)}}); err != nil {
		t.Fatal(err)
	}
	c := startBackupServers(t, kv, 2)
	leader := c.Leader(t)
	cl := leader.Client(t)
	for i := range 50 {
		if r := cl.Put(fmt.Sprintf("k%02d", i), []byte(strings.Repeat("v", 100))); !r.OK() {
			t.Fatalf("put: %v", r)
		}
	}
	follower := c.Others(leader)[0].ID

	t.Run("succeeds", func(t *testing.T) {
		b := &kvv1.KVStoreBackup{ObjectMeta: metav1.ObjectMeta{Name: "first", Namespace: ns}, Spec: kvv1.KVStoreBackupSpec{KVStoreName: kv.Name}}
		if err := k8s.Create(ctx, b); err != nil {
			t.Fatal(err)
		}
		b = waitBackup(t, ns, b.Name)
		if b.Status.Phase != kvv1.BackupSucceeded {
			t.Fatalf("phase %s: %s", b.Status.Phase, b.Status.Message)
		}
		if b.Status.Source != follower {
			t.Errorf("source %q, want the caught-up follower %q", b.Status.Source, follower)
		}
		if b.Status.Revision < 1 || b.Status.SizeBytes == 0 || b.Status.StartTime == nil || b.Status.CompletionTime == nil || b.Status.Attempts != 1 {
			t.Errorf("status %+v", b.Status)
		}
		wantURI := "s3://backups/team/bk/" + b.Status.BackupName + ".db"
		if b.Status.DestinationURI != wantURI {
			t.Errorf("destinationURI %q, want %q", b.Status.DestinationURI, wantURI)
		}
		obj, err := s3.Client(t, s3.Admin).GetObject(ctx, "backups", "team/bk/"+b.Status.BackupName+".db", minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		n, err := io.Copy(h, obj)
		obj.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != b.Status.SHA256 || n != b.Status.SizeBytes {
			t.Errorf("the object's sha256 %s (%d bytes), status says %s (%d bytes)", got, n, b.Status.SHA256, b.Status.SizeBytes)
		}
		eventually(t, "the KVStore's lastBackup and condition", func() error {
			k := &kvv1.KVStore{}
			if err := get(ns, kv.Name, k); err != nil {
				return err
			}
			if k.Status.LastBackup == nil || k.Status.LastBackup.Name != b.Name || k.Status.LastBackup.SHA256 != b.Status.SHA256 {
				return fmt.Errorf("lastBackup %+v", k.Status.LastBackup)
			}
			if c := meta.FindStatusCondition(k.Status.Conditions, kvv1.ConditionLastBackupSucceeded); c == nil || c.Status != metav1.ConditionTrue || c.Reason != ReasonBackupSucceeded {
				return fmt.Errorf("condition %+v", c)
			}
			if meta.FindStatusCondition(k.Status.Conditions, kvv1.ConditionAvailable) == nil {
				return errors.New("the KVStore reconciler's conditions are gone")
			}
			return nil
		})
		if v := testutil.ToFloat64(backupLastSuccess.WithLabelValues(ns, kv.Name)); v < float64(b.Status.CompletionTime.Unix()-1) {
			t.Errorf("last success metric %v", v)
		}
		waitEvent(t, ns, b.Name, corev1.EventTypeNormal, ReasonBackupSucceeded)
		if v := testutil.ToFloat64(backupSuccesses.WithLabelValues(ns, kv.Name)); v != 1 {
			t.Errorf("successes %v", v)
		}
	})

	t.Run("wrong credentials fail", func(t *testing.T) {
		if err := k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "bad-creds", Namespace: ns},
			Data: map[string][]byte{S3AccessKeyIDKey: []byte(s3.Admin.AccessKey), S3SecretAccessKeyKey: []byte("not-the-secret")}}); err != nil {
			t.Fatal(err)
		}
		d := kv.Spec.Backup.Destination.DeepCopy()
		d.S3.CredentialsSecret = "bad-creds"
		b := &kvv1.KVStoreBackup{ObjectMeta: metav1.ObjectMeta{Name: "second", Namespace: ns}, Spec: kvv1.KVStoreBackupSpec{KVStoreName: kv.Name, Destination: d}}
		if err := k8s.Create(ctx, b); err != nil {
			t.Fatal(err)
		}
		b = waitBackup(t, ns, b.Name)
		if b.Status.Phase != kvv1.BackupFailed || !strings.Contains(b.Status.Message, "SignatureDoesNotMatch") || b.Status.Attempts != 1 {
			t.Fatalf("status %+v", b.Status)
		}
		t.Logf("failure message: %s", b.Status.Message)
		eventually(t, "the KVStore's condition False", func() error {
			k := &kvv1.KVStore{}
			if err := get(ns, kv.Name, k); err != nil {
				return err
			}
			c := meta.FindStatusCondition(k.Status.Conditions, kvv1.ConditionLastBackupSucceeded)
			if c == nil || c.Status != metav1.ConditionFalse || c.Reason != ReasonBackupFailed || !strings.Contains(c.Message, b.Status.Message) {
				return fmt.Errorf("condition %+v", c)
			}
			if k.Status.LastBackup == nil || k.Status.LastBackup.Name != "first" {
				return fmt.Errorf("lastBackup %+v, want the first backup kept", k.Status.LastBackup)
			}
			return nil
		})
		waitEvent(t, ns, b.Name, corev1.EventTypeWarning, ReasonBackupFailed)
		if v := testutil.ToFloat64(backupFailures.WithLabelValues(ns, kv.Name)); v != 1 {
			t.Errorf("failures %v", v)
		}
		if v := testutil.ToFloat64(backupLastFailure.WithLabelValues(ns, kv.Name)); v < float64(b.Status.CompletionTime.Unix()-1) {
			t.Errorf("last failure metric %v", v)
		}
	})
}

// waitBackup waits until the KVStoreBackup has succeeded or failed.
func waitBackup(t *testing.T, ns, name string) *kvv1.KVStoreBackup {
	t.Helper()
	b := &kvv1.KVStoreBackup{}
	harness.Eventually(t, "backup "+name+" done", time.Minute, func() error {
		if err := get(ns, name, b); err != nil {
			return err
		}
		if b.Status.Phase != kvv1.BackupSucceeded && b.Status.Phase != kvv1.BackupFailed {
			return fmt.Errorf("phase %q", b.Status.Phase)
		}
		return nil
	})
	return b
}

// TestDesiredStatusKeepsBackupStatus: the KVStore reconciler writes the
// whole status; it must keep what the backup controller recorded.
func TestDesiredStatusKeepsBackupStatus(t *testing.T) {
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	kv := newKV(nil)
	done := metav1.NewTime(now)
	kv.Status.LastBackup = &kvv1.LastBackupStatus{Name: "b1", CompletionTime: &done, SHA256: "ab"}
	kv.Status.Conditions = []metav1.Condition{{Type: kvv1.ConditionLastBackupSucceeded, Status: metav1.ConditionFalse, Reason: ReasonBackupFailed, Message: "m"}}
	st := desiredStatus(kv, statusInputs{names: namesFor(kv), now: now.Add(time.Minute), endpoint: "e"})
	if st.LastBackup == nil || st.LastBackup.Name != "b1" {
		t.Errorf("lastBackup %+v", st.LastBackup)
	}
	if c := meta.FindStatusCondition(st.Conditions, kvv1.ConditionLastBackupSucceeded); c == nil || c.Status != metav1.ConditionFalse || c.Message != "m" {
		t.Errorf("condition %+v", c)
	}
}

// TestBackupFailsWithoutRunning: a backup that cannot be taken, and one
// the operator left Running, end Failed with a message saying why.
func TestBackupFailsWithoutRunning(t *testing.T) {
	ns := newNamespace(t)
	kv := &kvv1.KVStore{ObjectMeta: metav1.ObjectMeta{Name: "nodest", Namespace: ns}}
	kv.Spec.TLS.Pods = "Disabled"
	create(t, kv)
	b := &kvv1.KVStoreBackup{ObjectMeta: metav1.ObjectMeta{Name: "nodest", Namespace: ns}, Spec: kvv1.KVStoreBackupSpec{KVStoreName: kv.Name}}
	if err := k8s.Create(ctx, b); err != nil {
		t.Fatal(err)
	}
	b = waitBackup(t, ns, b.Name)
	if b.Status.Phase != kvv1.BackupFailed || !strings.Contains(b.Status.Message, "spec.backup.destination") || b.Status.Attempts != 0 {
		t.Errorf("no destination: %+v", b.Status)
	}
	eventually(t, "the KVStore's condition False", func() error {
		k := &kvv1.KVStore{}
		if err := get(ns, kv.Name, k); err != nil {
			return err
		}
		if c := meta.FindStatusCondition(k.Status.Conditions, kvv1.ConditionLastBackupSucceeded); c == nil || c.Status != metav1.ConditionFalse {
			return fmt.Errorf("condition %+v", c)
		}
		return nil
	})

	// Left Running (as an operator that stopped mid-stream leaves it):
	// Failed, whatever else is wrong. Its KVStore does not exist, so it
	// first fails for that; then the test sets it back to Running.
	left := &kvv1.KVStoreBackup{ObjectMeta: metav1.ObjectMeta{Name: "left", Namespace: ns}, Spec: kvv1.KVStoreBackupSpec{KVStoreName: "gone"}}
	if err := k8s.Create(ctx, left); err != nil {
		t.Fatal(err)
	}
	left = waitBackup(t, ns, left.Name)
	if left.Status.Phase != kvv1.BackupFailed || !strings.Contains(left.Status.Message, "spec.kvstoreName") {
		t.Errorf("no KVStore: %+v", left.Status)
	}
	base := left.DeepCopy()
	left.Status.Phase = kvv1.BackupRunning
	if err := k8s.Status().Patch(ctx, left, client.MergeFrom(base)); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, "the backup left Running fails", 20*time.Second, func() error {
		if err := get(ns, left.Name, left); err != nil {
			return err
		}
		if left.Status.Phase != kvv1.BackupFailed || !strings.Contains(left.Status.Message, "stopped") {
			return fmt.Errorf("status %+v", left.Status)
		}
		return nil
	})
}

// waitEvent waits for an event of type and reason regarding the
// KVStoreBackup name.
func waitEvent(t *testing.T, ns, name, typ, reason string) {
	t.Helper()
	eventually(t, reason+" event on "+name, func() error {
		list := &eventsv1.EventList{}
		if err := k8s.List(ctx, list, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, e := range list.Items {
			if e.Regarding.Kind == "KVStoreBackup" && e.Regarding.Name == name && e.Type == typ && e.Reason == reason {
				return nil
			}
		}
		return fmt.Errorf("%d events, none %s %s", len(list.Items), typ, reason)
	})
}

// startBackupServers starts a cluster of size server processes with kv's
// admin token (waiting for the operator's auth Secret), standing in for
// kv's pods: the backup controller's snapshot source reaches them
// (backupServers).
func startBackupServers(t *testing.T, kv *kvv1.KVStore, size int) *harness.Cluster {
	t.Helper()
	var token string
	eventually(t, "the auth Secret", func() error {
		s := &corev1.Secret{}
		if err := get(kv.Namespace, namesFor(kv).auth, s); err != nil {
			return err
		}
		token = string(s.Data[AuthTokenKey])
		return nil
	})
	c := harness.StartCluster(t, harness.ClusterOptions{Size: size, Token: token})
	urls := map[string]string{"": c.Nodes[0].URL}
	for _, n := range c.Nodes {
		urls[n.ID] = n.URL
	}
	backupServers.Store(kv.Namespace, urls)
	return c
}
