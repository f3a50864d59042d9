//go:build kube

package kube

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	kvv1 "kvstore.dev/kvstore/api/v1"
	"kvstore.dev/kvstore/test/harness"
	"kvstore.dev/kvstore/test/harness/kube"
)

// sampleSpec is config/samples' KVStore spec without replicas (KVStore
// sets them) and without the Ingress (test/e2e/ingress's).
func sampleSpec(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(harness.Root(), "config", "samples", "kvstore_v1_kvstore.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var sample struct {
		Spec map[string]any `json:"spec"`
	}
	if err := yaml.Unmarshal(b, &sample); err != nil {
		t.Fatal(err)
	}
	delete(sample.Spec, "replicas")
	delete(sample.Spec, "ingress")
	out, err := yaml.Marshal(sample.Spec)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// testSample: the sample KVStore with 3 replicas in a restricted
// namespace: every pod Ready without a restart, its server running as uid
// 65532 on a read-only root and writing its database into the claim's
// volume, Available, one leader (in status, kubectl get kvs and the
// servers' own view), and a write read back linearizably through the
// client Service. The operator's pod runs as 65532 on a read-only root too.
func testSample(t *testing.T, k *kube.Cluster) {
	s := newStore(t, k, "demo", 3, sampleSpec(t))
	kv := s.Get(t)

	pods := s.Pods(t)
	names := map[string]bool{}
	for i := range pods {
		p := &pods[i]
		names[p.Name] = true
		if n := kube.Restarts(p); n != 0 {
			t.Errorf("pod %s restarted %d times on its first start (%s)", p.Name, n, kube.PodState(p))
		}
		proc := containerProcess(t, p, "kvstore")
		checkProcess(t, p.Name, proc)
		// The server wrote its database into the claim's volume as 65532.
		// (local-path's volumes are hostPath ones, made 0777, and the
		// kubelet applies no fsGroup to those: the group is not checked.)
		var st syscall.Stat_t
		db := filepath.Join("/proc", itoa(proc.pid), "root", "data", "kv.db")
		if err := syscall.Stat(db, &st); err != nil {
			t.Errorf("pod %s: stat /data/kv.db: %v", p.Name, err)
		} else if st.Uid != 65532 {
			t.Errorf("pod %s: /data/kv.db is owned by uid %d gid %d, want the server's 65532", p.Name, st.Uid, st.Gid)
		}
	}
	if !names[kv.Status.Leader] {
		t.Errorf("status.leader %q is not one of the pods %v", kv.Status.Leader, names)
	}
	out := k.Kubectl(t, "-n", s.Namespace, "get", "kvs", s.Name, "--no-headers")
	if f := strings.Fields(out); len(f) < 4 || f[1] != "3" || f[2] != "3" || f[3] != kv.Status.Leader {
		t.Errorf("kubectl get kvs: %q, want replicas 3, ready 3, leader %s", out, kv.Status.Leader)
	}
	kube.Eventually(t, "the servers name the leader of status.leader", kube.ReadyTimeout, func() error {
		st, err := s.Client.ClusterStatus()
		if err != nil {
			return err
		}
		if now := s.Get(t).Status.Leader; st.LeaderID != now {
			return errorf("servers: leader %q; status.leader %q", st.LeaderID, now)
		}
		return nil
	})

	if r := s.Client.Put("e2e/first", []byte("hello-k8s")); !r.OK() {
		t.Fatalf("PUT through the client Service %s: %s", s.URL, r)
	}
	if r := s.Client.Get("e2e/first", "linearizable"); !r.OK() || string(r.Body) != "hello-k8s" {
		t.Errorf("linearizable GET through the client Service: %s %q, want hello-k8s", r, r.Body)
	}

	var ops corev1.PodList
	if err := k.Client(t).List(context.Background(), &ops, client.InNamespace(kube.OperatorNamespace)); err != nil || len(ops.Items) == 0 {
		t.Fatalf("operator pods: %v (%d)", err, len(ops.Items))
	}
	for i := range ops.Items {
		checkProcess(t, ops.Items[i].Name, containerProcess(t, &ops.Items[i], "manager"))
	}
}

// checkProcess fails the test unless the process runs as uid and gid
// 65532 with its root filesystem mounted read-only.
func checkProcess(t *testing.T, pod string, p process) {
	t.Helper()
	if p.uid != "65532" || p.gid != "65532" {
		t.Errorf("pod %s: process %d runs as uid %s gid %s, want 65532", pod, p.pid, p.uid, p.gid)
	}
	if p.rootMountFlags != "ro" && !strings.HasPrefix(p.rootMountFlags, "ro,") {
		t.Errorf("pod %s: process %d has / mounted %q, want ro", pod, p.pid, p.rootMountFlags)
	}
}

// testDeleteRecreate: deleting the KVStore keeps its PVCs; the KVStore
// created again with the same name finds them, and the data is back.
func testDeleteRecreate(t *testing.T, k *kube.Cluster) {
	s := newStore(t, k, "recreate", 3, small)
	want := putAll(t, s, "kept/", 20)
	claims := claimUIDs(t, k, s)
	if len(claims) != 3 {
		t.Fatalf("%d claims, want 3: %v", len(claims), claims)
	}

	ctx := context.Background()
	if err := k.Client(t).Delete(ctx, &kvv1.KVStore{ObjectMeta: metaName(s)}, client.PropagationPolicy("Foreground")); err != nil {
		t.Fatal(err)
	}
	kube.Eventually(t, "the KVStore, its StatefulSet and pods gone", kube.ReadyTimeout, func() error {
		if err := k.Client(t).Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: s.Name}, &kvv1.KVStore{}); err == nil {
			return errorf("KVStore still there")
		}
		if pods := s.Pods(t); len(pods) > 0 {
			return errorf("%d pods left", len(pods))
		}
		return nil
	})
	if got := claimUIDs(t, k, s); !equalMaps(got, claims) {
		t.Fatalf("after the delete the claims are %v, want the same %v", got, claims)
	}

	s = k.KVStore(t, s.Namespace, s.Name, 3, small)
	checkAll(t, s, want)
	if got := claimUIDs(t, k, s); !equalMaps(got, claims) {
		t.Errorf("after the new KVStore the claims are %v, want the kept %v", got, claims)
	}
}

// claimUIDs maps the store's PVCs (Bound) to their UIDs.
func claimUIDs(t *testing.T, k *kube.Cluster, s *kube.Store) map[string]string {
	t.Helper()
	var list corev1.PersistentVolumeClaimList
	if err := k.Client(t).List(context.Background(), &list, client.InNamespace(s.Namespace),
		client.MatchingLabels{"app.kubernetes.io/instance": s.Name}); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, c := range list.Items {
		out[c.Name] = string(c.UID) + " " + string(c.Status.Phase)
	}
	return out
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
