//go:build kube

package kube

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kvv1 "kvstore.dev/kvstore/api/v1"
	"kvstore.dev/kvstore/test/harness"
	"kvstore.dev/kvstore/test/harness/kube"
	"kvstore.dev/kvstore/wire"
)

// testBackup: the operator, in its pod, backs a three-server KVStore up to
// S3 (SeaweedFS on the host, reached by the pods at kube.HostIP): the
// KVStoreBackup succeeds from a follower, the object's SHA-256 is the one
// in its status, and the KVStore records it. A backup to a claim runs as a
// Job, and the file on the volume has the SHA-256 of its status; a new
// KVStore bootstrapped from it holds exactly its keys and revisions, and
// one given a wrong checksum never starts a server. A backup with credentials the
// bucket refuses fails loudly: phase Failed with the S3 error, and the
// KVStore's LastBackupSucceeded condition False.
func testBackup(t *testing.T, k *kube.Cluster) {
	writer := harness.S3Identity{Name: "writer", AccessKey: "kvtestwriter", SecretKey: "kvtest-writer-" + harness.Token(),
		Actions: []string{"Read", "List", "Write"}}
	s3 := harness.StartS3On(t, kube.HostIP, writer)
	s3.MakeBucket(t, "backups")
	ns := k.Namespace(t, "e2e-backup")
	k.Apply(t, ns, fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: s3}
stringData: {accessKeyID: %s, secretAccessKey: %s}
---
apiVersion: v1
kind: Secret
metadata: {name: s3-wrong}
stringData: {accessKeyID: %s, secretAccessKey: not-the-secret}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: backups}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
`, writer.AccessKey, writer.SecretKey, writer.AccessKey))
	spec := small + fmt.Sprintf("backup:\n  destination:\n    s3: {bucket: backups, prefix: kube/e2e, endpoint: %q, bucketLookup: path, credentialsSecret: s3}\n", s3.Endpoint)
	start := time.Now()
	s := k.KVStore(t, ns, "bk", 3, spec)
	t.Logf("KVStore %s/bk ready in %s", ns, time.Since(start).Round(time.Second))
	want := putAll(t, s, "backed/", 50)

	b := runBackup(t, k, ns, "bk-first", "bk", "")
	if b.Status.Phase != kvv1.BackupSucceeded {
		t.Fatalf("KVStoreBackup bk-first: phase %s, message %q", b.Status.Phase, b.Status.Message)
	}
	// A caught-up follower is preferred, the leader taken otherwise (the
	// envtest TestBackupToS3 checks the choice); here the source must be
	// one of the store's pods.
	if leader := s.Get(t).Status.Leader; !strings.HasPrefix(b.Status.Source, "bk-") {
		t.Errorf("the backup came from %q, want one of the store's pods", b.Status.Source)
	} else {
		t.Logf("the backup came from %s; the leader is %s", b.Status.Source, leader)
	}
	if b.Status.Revision < int64(len(want)) {
		t.Errorf("the backup holds revision %d, want at least %d (the writes before it)", b.Status.Revision, len(want))
	}
	wantURI := "s3://backups/kube/e2e/" + b.Status.BackupName + ".db"
	if b.Status.DestinationURI != wantURI {
		t.Errorf("destinationURI %q, want %q", b.Status.DestinationURI, wantURI)
	}
	obj, err := s3.Client(t, s3.Admin).GetObject(context.Background(), "backups", "kube/e2e/"+b.Status.BackupName+".db", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, obj)
	obj.Close()
	if err != nil {
		t.Fatalf("read the backup object: %v", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != b.Status.SHA256 || n != b.Status.SizeBytes {
		t.Errorf("the object has SHA-256 %s and %d bytes; the status says %s and %d", got, n, b.Status.SHA256, b.Status.SizeBytes)
	}
	// The KVStore's status is written after the KVStoreBackup's.
	kube.Eventually(t, "the KVStore's status.lastBackup and LastBackupSucceeded True", time.Minute, func() error {
		kv := s.Get(t)
		if kv.Status.LastBackup == nil || kv.Status.LastBackup.SHA256 != b.Status.SHA256 {
			return fmt.Errorf("status.lastBackup = %+v, want the backup %s", kv.Status.LastBackup, b.Status.BackupName)
		}
		if c := meta.FindStatusCondition(kv.Status.Conditions, kvv1.ConditionLastBackupSucceeded); c == nil || c.Status != "True" {
			return fmt.Errorf("condition LastBackupSucceeded = %+v", c)
		}
		return nil
	})

	p := runBackup(t, k, ns, "bk-pvc", "bk", "destination:\n    persistentVolumeClaim: {claimName: backups, subPath: demo}")
	if p.Status.Phase != kvv1.BackupSucceeded {
		t.Fatalf("KVStoreBackup bk-pvc: phase %s, message %q", p.Status.Phase, p.Status.Message)
	}
	if want := "pvc://backups/demo/" + p.Status.BackupName + ".db"; p.Status.DestinationURI != want {
		t.Errorf("destinationURI %q, want %q", p.Status.DestinationURI, want)
	}
	if sum, n := claimFileSHA256(t, k, ns, "backups", "demo/"+p.Status.BackupName+".db"); sum != p.Status.SHA256 || n != p.Status.SizeBytes {
		t.Errorf("the backup file on the claim has SHA-256 %s and %d bytes; the status says %s and %d", sum, n, p.Status.SHA256, p.Status.SizeBytes)
	}

	// A new KVStore from that backup: restored on pod 0's empty claim by
	// the operator's Job, the other servers caught up by Raft: the same
	// keys, values and revisions as the store it was taken from.
	before := listAll(t, s)
	start = time.Now()
	r := k.KVStore(t, ns, "restored", 3, small+"bootstrap:\n  fromBackup: {backupName: bk-pvc}\n")
	t.Logf("KVStore %s/restored from bk-pvc ready in %s", ns, time.Since(start).Round(time.Second))
	if b := r.Get(t).Status.Bootstrap; b == nil || b.Phase != kvv1.BootstrapRestored || b.SHA256 != p.Status.SHA256 {
		t.Errorf("restored: status.bootstrap %+v, want Restored with %s", b, p.Status.SHA256)
	}
	if after := listAll(t, r); !slices.EqualFunc(before, after, sameKey) {
		t.Errorf("the restored store differs from the backed-up one: %d keys before, %d after\nbefore %v\nafter  %v", len(before), len(after), before, after)
	}
	// A wrong checksum: refused before any server starts.
	k.Apply(t, ns, fmt.Sprintf("apiVersion: kvstore.dev/v1\nkind: KVStore\nmetadata: {name: badsum}\nspec:\n  replicas: 1\n  bootstrap:\n    fromBackup:\n      source: {persistentVolumeClaim: {claimName: backups, subPath: demo}}\n      name: %s\n      sha256: \"%s\"\n",
		p.Status.BackupName, strings.Repeat("0", 64)))
	kube.Eventually(t, "badsum's bootstrap Failed", 5*time.Minute, func() error {
		kv := &kvv1.KVStore{}
		if err := k.Client(t).Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "badsum"}, kv); err != nil {
			return err
		}
		if b := kv.Status.Bootstrap; b == nil || b.Phase != kvv1.BootstrapFailed {
			return fmt.Errorf("status.bootstrap %+v", b)
		}
		t.Logf("badsum: %s", kv.Status.Bootstrap.Message)
		return nil
	})
	if err := k.Client(t).Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "badsum"}, &appsv1.StatefulSet{}); err == nil {
		t.Error("badsum has a StatefulSet although its backup was refused")
	}

	wrong := fmt.Sprintf("destination:\n    s3: {bucket: backups, prefix: kube/wrong, endpoint: %q, bucketLookup: path, credentialsSecret: s3-wrong}", s3.Endpoint)
	f := runBackup(t, k, ns, "bk-wrong-key", "bk", wrong)
	if f.Status.Phase != kvv1.BackupFailed || !strings.Contains(f.Status.Message, "403") && !strings.Contains(f.Status.Message, "Signature") {
		t.Errorf("KVStoreBackup with the wrong secret key: phase %s, message %q; want Failed with the S3 error", f.Status.Phase, f.Status.Message)
	}
	kube.Eventually(t, "LastBackupSucceeded False", time.Minute, func() error {
		c := meta.FindStatusCondition(s.Get(t).Status.Conditions, kvv1.ConditionLastBackupSucceeded)
		if c == nil || c.Status != "False" {
			return fmt.Errorf("condition %+v", c)
		}
		return nil
	})
	checkAll(t, s, want)
}

// listAll lists every key of the store, values and revisions.
func listAll(t *testing.T, s *kube.Store) []wire.KeyMeta {
	t.Helper()
	var all []wire.KeyMeta
	after := ""
	for {
		var page wire.ListResponse
		path := wire.PathKV + "?prefix=&limit=500"
		if after != "" {
			path += "&after=" + url.QueryEscape(after)
		}
		if err := s.Client.JSON(http.MethodGet, path, nil, &page); err != nil {
			t.Fatalf("list %s: %v", s.Name, err)
		}
		all = append(all, page.Items...)
		if page.Next == "" {
			return all
		}
		after = page.Next
	}
}

// sameKey compares what a restore must keep of a key.
func sameKey(a, b wire.KeyMeta) bool {
	return a.Key == b.Key && string(a.Value) == string(b.Value) && a.Revision == b.Revision &&
		a.CreateRevision == b.CreateRevision && a.Version == b.Version
}

// claimFileSHA256 reads file from the volume bound to claim, on the host
// (local-path-provisioner's volumes are host directories, and the node's
// filesystem is the host's), and returns its SHA-256 and size.
func claimFileSHA256(t *testing.T, k *kube.Cluster, ns, claim, file string) (string, int64) {
	t.Helper()
	ctx := context.Background()
	var pvc corev1.PersistentVolumeClaim
	if err := k.Client(t).Get(ctx, client.ObjectKey{Namespace: ns, Name: claim}, &pvc); err != nil {
		t.Fatal(err)
	}
	var pv corev1.PersistentVolume
	if err := k.Client(t).Get(ctx, client.ObjectKey{Name: pvc.Spec.VolumeName}, &pv); err != nil {
		t.Fatalf("the volume of claim %s: %v", claim, err)
	}
	var dir string
	switch {
	case pv.Spec.HostPath != nil:
		dir = pv.Spec.HostPath.Path
	case pv.Spec.Local != nil:
		dir = pv.Spec.Local.Path
	default:
		t.Fatalf("volume %s is neither hostPath nor local", pv.Name)
	}
	f, err := os.Open(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil)), n
}

// runBackup creates the KVStoreBackup name of KVStore kvName (with
// destinationYAML, "destination:\n    ...", as more of its spec) and waits
// until it has finished.
func runBackup(t *testing.T, k *kube.Cluster, ns, name, kvName, destinationYAML string) *kvv1.KVStoreBackup {
	t.Helper()
	manifest := fmt.Sprintf("apiVersion: kvstore.dev/v1\nkind: KVStoreBackup\nmetadata: {name: %s}\nspec:\n  kvstoreName: %s\n", name, kvName)
	if destinationYAML != "" {
		manifest += "  " + destinationYAML + "\n"
	}
	k.Apply(t, ns, manifest)
	b := &kvv1.KVStoreBackup{}
	took := kube.Eventually(t, "KVStoreBackup "+name+" finished", 5*time.Minute, func() error {
		if err := k.Client(t).Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, b); err != nil {
			return err
		}
		if b.Status.Phase != kvv1.BackupSucceeded && b.Status.Phase != kvv1.BackupFailed {
			return fmt.Errorf("phase %q: %s", b.Status.Phase, b.Status.Message)
		}
		return nil
	})
	t.Logf("KVStoreBackup %s: %s in %s (source %s, %d bytes, revision %d) %s", name, b.Status.Phase, took.Round(time.Second),
		b.Status.Source, b.Status.SizeBytes, b.Status.Revision, b.Status.Message)
	return b
}
