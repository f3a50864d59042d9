// Package kube runs the end-to-end tests' Kubernetes: the local
// single-node cluster of hack/kube (make e2e-up), brought up once per test
// process, kubectl and a controller-runtime client against it, and the
// project's operator installed from the chart with the locally built
// images. A test gets a namespace of its own (enforcing the restricted Pod
// Security Standard) whose pods, events and container logs, and the
// operator's log, are written to the test's artifacts when it fails.
//
//	func TestMain(m *testing.M) { kube.Main(m) } // uninstalls the operator at the end
//
//	k := kube.Up(t)                  // hack/kube/up.sh, cached binaries and images
//	k.InstallOperator(t)             // once per process: images imported, helm upgrade --install
//	ns := k.Namespace(t, "scale")    // deleted when t ends; dumped when t fails
//	s := k.KVStore(t, ns, "demo", 3, "config:\n  logLevel: debug\n") // applied, waited for
//	s.Client.Put("k", []byte("v"))   // through the client Service's ClusterIP, admin token
//	s.Apply(t, 5, ""); s.WaitReady(t, 5)
//	k.Kubectl(t, "-n", ns, "get", "pods")
//
// The API, stable for the e2e suites:
//   - Up(t) *Cluster; Cluster.Run, Kubectl, Apply, Namespace, Dump, Client.
//   - Main(m): TestMain of every package that calls InstallOperator.
//   - Cluster.InstallOperator(t) string: runs hack/images.sh --operator
//     with the suite's own tags (ServerImage, OperatorImage), tags
//     ServerImageB, imports the
//     images with hack/kube/load-images.sh (cached by image ID), installs
//     charts/kvstore as release OperatorRelease in OperatorNamespace and
//     waits for the Deployment; returns OperatorNamespace. One operator
//     serves every test process of the machine (file locks in $TMPDIR);
//     the last one to end uninstalls it (release, CRD, namespace).
//   - Cluster.KVStore(t, ns, name, replicas, extraSpecYAML) *Store: applies a
//     KVStore and waits (ReadyTimeout) until all pods are Ready, Available
//     is true and every member a voter. Store has Token, URL (the client
//     Service from the host), Client (a harness.Client of URL), and Apply,
//     WaitReady, Get, Pods.
//   - Disrupt(t), RestartNode(t): a test that restarts the node's kubelet
//     and containerd (hack/kube/restart.sh) waits for every other test's
//     Namespace, of any process, to end, and keeps new ones out.
//   - Eventually, Poll: harness's, with the condition run at most once a
//     second (API calls).
//
// The cluster's addresses are routed from the host: a test reaches pod IPs
// and ClusterIPs directly, and the pods reach the host at HostIP (a server
// a test starts there, such as harness.StartS3On's, serves them).
package kube

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kvstore.dev/kvstore/test/harness"
)

// HostIP is the host's end of the veth to the node's network namespace
// (HOST_IP in hack/kube/lib.sh), the node's default route: pods reach it.
const HostIP = "10.213.0.1"

// Cluster is the local cluster.
type Cluster struct {
	Kubeconfig string // the admin kubeconfig
	KubectlBin string // bin/kube/kubectl

	client client.WithWatch
}

var up = sync.OnceValues(func() (*Cluster, error) {
	root := harness.Root()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	// One up.sh at a time on the machine: a second one, seeing the first's
	// half-made cluster, would take it down.
	lock, err := flock("up", syscall.LOCK_EX)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "hack", "kube", "up.sh"))
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("hack/kube/up.sh: %w\n%s", err, stderr.Bytes())
	}
	c := &Cluster{
		Kubeconfig: strings.TrimSpace(string(out)),
		KubectlBin: filepath.Join(root, "bin", "kube", "kubectl"),
	}
	if c.client, err = newClient(c.Kubeconfig); err != nil {
		return nil, fmt.Errorf("a client of %s: %w", c.Kubeconfig, err)
	}
	return c, nil
})

// Up brings the local cluster up (or finds it up) and returns it. It needs
// root; it skips in -short mode, and otherwise fails when the cluster
// cannot come up.
func Up(t testing.TB) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("the Kubernetes end-to-end tests are skipped with -short")
	}
	c, err := up()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Run runs kubectl with args and stdin, and returns its stdout, or an error
// holding its stderr.
func (c *Cluster) Run(ctx context.Context, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.KubectlBin, append([]string{"--kubeconfig", c.Kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// Kubectl runs kubectl with args (for at most 5 minutes) and returns its
// stdout; it fails the test when kubectl fails.
func (c *Cluster) Kubectl(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := c.Run(ctx, "", args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Apply applies manifest (YAML, several documents allowed) in namespace
// ns with server-side apply.
func (c *Cluster) Apply(t testing.TB, ns, manifest string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := c.Run(ctx, manifest, "-n", ns, "apply", "--server-side", "--force-conflicts", "--field-manager", "e2e", "-f", "-"); err != nil {
		t.Fatalf("%v\n%s", err, manifest)
	}
}

// Namespace creates the namespace name (enforcing the restricted Pod
// Security Standard) and returns it; when t ends the namespace is deleted,
// after its state is dumped if t failed.
func (c *Cluster) Namespace(t testing.TB, name string) string {
	t.Helper()
	if !disrupting.Load() {
		// Released last (cleanups run in reverse): after the deletion.
		lock, err := flock("node", syscall.LOCK_SH)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { lock.Close() })
	}
	c.Apply(t, "", restrictedNamespace(name))
	t.Cleanup(func() {
		if t.Failed() {
			c.Dump(t, name)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if _, err := c.Run(ctx, "", "delete", "namespace", name, "--wait=true"); err != nil {
			t.Errorf("deleting namespace %s: %v", name, err)
			return
		}
		// The claims' volumes are cluster-wide: wait for the provisioner
		// to delete them too.
		_, err := Poll(3*time.Minute, func() error {
			var pvs corev1.PersistentVolumeList
			if err := c.client.List(ctx, &pvs); err != nil {
				return err
			}
			var left []string
			for _, pv := range pvs.Items {
				if ref := pv.Spec.ClaimRef; ref != nil && ref.Namespace == name {
					left = append(left, pv.Name+" ("+string(pv.Status.Phase)+")")
				}
			}
			if len(left) > 0 {
				return fmt.Errorf("volumes of namespace %s left: %v", name, left)
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	})
	return name
}

// disrupting is set while a test of this process holds Disrupt.
var disrupting atomic.Bool

// Disrupt is for a test that disturbs the whole node (RestartNode): it
// waits until no test of any process on the machine holds a Namespace, and
// keeps new ones out until t ends (its own Namespace excepted). Call it
// before t's Namespace; not from a parallel test.
func (c *Cluster) Disrupt(t testing.TB) {
	t.Helper()
	start := time.Now()
	lock, err := flock("node", syscall.LOCK_EX)
	if err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited > time.Second {
		t.Logf("kube: waited %s for the other tests' namespaces", waited.Round(time.Second))
	}
	disrupting.Store(true)
	t.Cleanup(func() {
		disrupting.Store(false)
		lock.Close()
	})
}

// RestartNode stops the node's kubelet and containerd, kills the pods'
// processes (as a reboot would), starts both again (hack/kube/restart.sh)
// and waits until the node is Ready. Call Disrupt first.
func (c *Cluster) RestartNode(t testing.TB) {
	t.Helper()
	if !disrupting.Load() {
		t.Fatal("kube.RestartNode: call Disrupt first")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := run(ctx, "bash", filepath.Join(harness.Root(), "hack", "kube", "restart.sh"), "kubelet", "containerd"); err != nil {
		t.Fatal(err)
	}
	Eventually(t, "node Ready after the restart", ReadyTimeout, func() error {
		_, err := c.Run(ctx, "", "wait", "--for=condition=Ready", "node/e2e", "--timeout=1s")
		return err
	})
}

// Dump writes the namespace's objects, events and every container's log
// (and its previous instance's), and once InstallOperator ran the
// operator's log, to files under the test's artifacts directory, and
// logs where.
func (c *Cluster) Dump(t testing.TB, ns string) {
	dir := filepath.Join(harness.ArtifactsDir(t), "kube-"+strings.ReplaceAll(t.Name(), "/", "_"), ns)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("dump: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	save := func(file string, args ...string) {
		out, err := c.Run(ctx, "", args...)
		if err != nil {
			out += "\n" + err.Error()
		}
		_ = os.WriteFile(filepath.Join(dir, file), []byte(out), 0o644)
	}
	save("objects.txt", "-n", ns, "get", "all,pvc,kvstores,events", "-o", "wide")
	save("objects.yaml", "-n", ns, "get", "pods,statefulsets,services,pvc,kvstores", "-o", "yaml")
	save("describe-pods.txt", "-n", ns, "describe", "pods")
	pods, _ := c.Run(ctx, "", "-n", ns, "get", "pods", "-o", `jsonpath={range .items[*]}{.metadata.name}{" "}{range .spec.containers[*]}{.name}{" "}{end}{"\n"}{end}`)
	for _, line := range strings.Split(strings.TrimSpace(pods), "\n") {
		f := strings.Fields(line)
		for _, container := range f[min(1, len(f)):] {
			save(f[0]+"_"+container+".log", "-n", ns, "logs", f[0], "-c", container)
			save(f[0]+"_"+container+".previous.log", "-n", ns, "logs", f[0], "-c", container, "--previous")
		}
	}
	if usersLock != nil { // InstallOperator ran: the operator's side too
		save("operator.log", "-n", OperatorNamespace, "logs", "deployment/"+OperatorRelease+"-operator", "--all-containers", "--since=1h")
		save("operator-objects.txt", "-n", OperatorNamespace, "get", "all,events", "-o", "wide")
	}
	t.Logf("kube: namespace %s dumped to %s", ns, dir)
}

// FollowLogs streams the log of the pod's first container (kubectl logs
// -f, from now on) until the container exits or t ends, and returns a
// function that gives what was read so far.
func (c *Cluster) FollowLogs(t testing.TB, ns, pod string) func() string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, c.KubectlBin, "--kubeconfig", c.Kubeconfig, "-n", ns, "logs", "-f", "--since=1s", pod)
	var buf syncBuffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return buf.String
}

// syncBuffer is a bytes.Buffer safe for a writer and readers at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
