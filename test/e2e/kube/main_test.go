//go:build kube

package kube

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"kvstore.dev/kvstore/test/harness"
	"kvstore.dev/kvstore/test/harness/kube"
	"kvstore.dev/kvstore/wire"
)

// TestMain runs the scenarios 8 at a time unless -parallel says otherwise
// (its default, GOMAXPROCS, is 2 here): they spend their time waiting.
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		_ = flag.Set("test.parallel", "8")
	}
	kube.Main(m)
}

// TestKube runs the scenarios: those that do not disturb one another in
// parallel, then the node restart alone.
func TestKube(t *testing.T) {
	k := kube.Up(t)
	k.InstallOperator(t)
	parallel := map[string]func(*testing.T, *kube.Cluster){
		"sample":          testSample,
		"leader deleted":  testLeaderDeleted,
		"scale":           testScale,
		"rolling update":  testRollingUpdate,
		"delete recreate": testDeleteRecreate,
		"backup":          testBackup,
		"peer tls":        testPeerTLS,
		"recovery":        testRecovery,
	}
	t.Run("parallel", func(t *testing.T) {
		for name, test := range parallel {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				test(t, k)
			})
		}
	})
	t.Run("node restart", func(t *testing.T) { testNodeRestart(t, k) })
}

// small is the spec's resources of the scenarios' stores, except the
// sample's: with the default requests (100m CPU each) the parallel
// scenarios' 17 pods and the Ingress suite's would not fit on the node's
// two cores.
const small = "resources:\n  requests: {cpu: 10m, memory: 64Mi}\n  limits: {memory: 512Mi}\n"

// newStore makes the namespace e2e-<name> and a KVStore name in it.
func newStore(t *testing.T, k *kube.Cluster, name string, replicas int, extraSpecYAML string) *kube.Store {
	t.Helper()
	ns := k.Namespace(t, "e2e-"+name)
	start := time.Now()
	s := k.KVStore(t, ns, name, replicas, extraSpecYAML)
	t.Logf("KVStore %s/%s ready with %d servers in %s", ns, name, replicas, time.Since(start).Round(time.Second))
	return s
}

// startWriters writes continuously through the store's client Service.
func startWriters(t *testing.T, s *kube.Store) *harness.Writers {
	t.Helper()
	c := s.Client.WithTimeout(5 * time.Second)
	return harness.StartWriters(t, harness.WriterOptions{Workers: 4, Prefix: "ack/", Client: func(int, int) *harness.Client { return c }})
}

// retriable are the failures a client of a store that is changing may see
// and retry: no quorum or no leader for a moment, a server going away
// (unavailable, or no answer on a connection to a pod that is stopping),
// and a write whose outcome is unknown because its leader stepped down
// while committing it.
var retriable = map[string]bool{
	wire.CodeNoQuorum: true, wire.CodeNotLeader: true, wire.CodeUnavailable: true,
	wire.CodeOutcomeUnknown: true, "transport": true,
}

// stopAndVerify stops the writers, logs how their writes went, fails the
// test on a failure that is not retriable, and reads every acknowledged
// write back, linearizably.
func stopAndVerify(t *testing.T, s *kube.Store, w *harness.Writers) {
	t.Helper()
	w.Stop()
	failed := w.Failed()
	t.Logf("writers: %d acknowledged, failed %v", w.Count(), failed)
	for code, n := range failed {
		if !retriable[code] {
			t.Errorf("%d writes failed with %s, which a client cannot retry", n, code)
		}
	}
	w.Verify(t, s.Client, "linearizable")
}

// putAll writes n keys under prefix and fails the test on any failure.
func putAll(t *testing.T, s *kube.Store, prefix string, n int) map[string]string {
	t.Helper()
	want := map[string]string{}
	for i := range n {
		key, value := fmt.Sprintf("%s%03d", prefix, i), fmt.Sprintf("value-%d", i)
		kube.Eventually(t, "PUT "+key, time.Minute, func() error {
			if r := s.Client.Put(key, []byte(value)); !r.OK() {
				return fmt.Errorf("PUT %s: %s", key, r)
			}
			return nil
		})
		want[key] = value
	}
	return want
}

// checkAll reads every key of want linearizably (waiting for the store to
// answer) and fails the test for each one missing or different.
func checkAll(t *testing.T, s *kube.Store, want map[string]string) {
	t.Helper()
	var problems []string
	for key, value := range want {
		var r harness.Reply
		harness.Poll(time.Minute, func() error {
			r = s.Client.Get(key, "linearizable")
			if r.Err != nil || r.Status >= 500 {
				return fmt.Errorf("%s", r)
			}
			return nil
		})
		if !r.OK() || string(r.Body) != value {
			problems = append(problems, fmt.Sprintf("%s=%s reads %s %q", key, value, r, r.Body))
		}
	}
	harness.ReportProblems(t, fmt.Sprintf("%d keys written before", len(want)), problems)
}

// process is what the host sees of a container's main process.
type process struct {
	uid, gid       string // real uid and gid (/proc/<pid>/status)
	rootMountFlags string // mount options of its / (its mountinfo)
	pid            int
}

// containerProcess finds the process of the pod's container through the
// node's containerd (crictl inspect) and reads it from /proc: the node's
// processes are the host's.
func containerProcess(t *testing.T, pod *corev1.Pod, container string) process {
	t.Helper()
	var id string
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name == container {
			id = strings.TrimPrefix(cs.ContainerID, "containerd://")
		}
	}
	if id == "" {
		t.Fatalf("pod %s has no container %s running", pod.Name, container)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(harness.Root(), "bin", "kube", "crictl"),
		"--runtime-endpoint", "unix:///run/kvstore-kube/containerd.sock", "inspect", "-o", "json", id).Output()
	if err != nil {
		t.Fatalf("crictl inspect %s (%s/%s): %v", id, pod.Name, container, err)
	}
	var info struct {
		Info struct{ Pid int } `json:"info"`
	}
	if err := json.Unmarshal(out, &info); err != nil || info.Info.Pid == 0 {
		t.Fatalf("crictl inspect %s: no pid (%v)", id, err)
	}
	p := process{pid: info.Info.Pid}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) > 1 && f[0] == "Uid:":
			p.uid = f[1]
		case len(f) > 1 && f[0] == "Gid:":
			p.gid = f[1]
		}
	}
	mounts, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", p.pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mounts), "\n") {
		// id parent major:minor root mountpoint options ...
		if f := strings.Fields(line); len(f) > 5 && f[4] == "/" {
			p.rootMountFlags = f[5]
		}
	}
	return p
}
