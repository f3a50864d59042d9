package kube

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"kvstore.dev/kvstore/test/harness"
)

// Images are the project's images InstallOperator builds and imports into
// the cluster: the server, the operator, and the server again under a
// second tag (ServerImageB) for tests that change a KVStore's image. They
// are the suite's own tags, so that another build of the :local images
// (make run's compose stack, a Docker suite) cannot change what the
// cluster runs; hack/images.sh builds both from the same cached layers.
const (
	ServerImage   = "kvstore/kvstore:e2e"
	ServerImageB  = "kvstore/kvstore:e2e-b"
	OperatorImage = "kvstore/operator:e2e"
)

// OperatorNamespace is where InstallOperator installs the chart's release
// OperatorRelease; the operator's Deployment is OperatorRelease+"-operator".
const (
	OperatorNamespace = "kvstore-e2e-operator"
	OperatorRelease   = "kvstore"
)

// The operator is shared by every test process on the machine (go test
// runs test packages in parallel, and a KVStore must have one operator):
// a process installs or upgrades it holding installLock, then holds
// usersLock shared until Main's end, where the last user (the one that
// can take usersLock exclusively) uninstalls it.
var (
	mainCalled bool
	usersLock  *os.File
	installed  = sync.OnceValues(install)
	logInstall sync.Once
)

// Main runs the tests of a package that uses InstallOperator (call it from
// TestMain) and then, when no other test process uses the operator,
// uninstalls it: the release, its kept CRD (and so every KVStore left) and
// its namespace. The cluster itself stays up (hack/kube/down.sh takes it
// down).
func Main(m *testing.M) {
	mainCalled = true
	code := m.Run()
	if err := uninstall(); err != nil {
		fmt.Fprintf(os.Stderr, "kube: uninstalling the operator: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// InstallOperator makes sure the project's images are in the cluster and
// the operator runs from them: helm upgrade --install of charts/kvstore
// (image OperatorImage, pull policy Never, default server image
// ServerImage) into OperatorNamespace, which enforces the
// restricted Pod Security Standard, waiting until the Deployment is
// Available. It runs once per test process (later calls return at once)
// and returns the operator's namespace. The package's TestMain must call
// Main.
func (c *Cluster) InstallOperator(t testing.TB) string {
	t.Helper()
	if !mainCalled {
		t.Fatal("kube.InstallOperator: the package's TestMain must call kube.Main (it uninstalls the operator at the end)")
	}
	took, err := installed()
	if err != nil {
		t.Fatal(err)
	}
	logInstall.Do(func() { t.Logf("kube: images imported and operator installed in %s", took.Round(time.Second)) })
	return OperatorNamespace
}

func install() (time.Duration, error) {
	start := time.Now()
	c, err := up()
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	lock, err := flock("install", syscall.LOCK_EX)
	if err != nil {
		return 0, err
	}
	defer lock.Close()
	if usersLock, err = flock("users", syscall.LOCK_SH); err != nil {
		return 0, err
	}

	build := exec.CommandContext(ctx, "bash", filepath.Join(harness.Root(), "hack", "images.sh"), "--operator")
	build.Dir = harness.Root()
	build.Env = append(os.Environ(), "KVSTORE_IMAGE="+ServerImage, "OPERATOR_IMAGE="+OperatorImage)
	if out, err := build.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("hack/images.sh --operator: %w\n%s", err, out)
	}
	if err := run(ctx, "docker", "tag", ServerImage, ServerImageB); err != nil {
		return 0, err
	}
	if err := run(ctx, "bash", filepath.Join(harness.Root(), "hack", "kube", "load-images.sh"), ServerImage, ServerImageB, OperatorImage); err != nil {
		return 0, err
	}
	// The image's ID in a pod annotation: an operator image rebuilt under
	// the same tag rolls the Deployment.
	id, err := output(ctx, "docker", "image", "inspect", "-f", "{{.Id}}", OperatorImage)
	if err != nil {
		return 0, err
	}
	if _, err := c.Run(ctx, restrictedNamespace(OperatorNamespace), "apply", "--server-side", "--field-manager", "e2e", "-f", "-"); err != nil {
		return 0, err
	}
	repo, tag, _ := strings.Cut(OperatorImage, ":")
	if err := c.helm(ctx, "upgrade", "--install", OperatorRelease, filepath.Join(harness.Root(), "charts", "kvstore"),
		"--namespace", OperatorNamespace, "--wait", "--timeout", "10m",
		"--set", "image.repository="+repo, "--set", "image.tag="+tag, "--set", "image.pullPolicy=Never",
		"--set", "defaultImage="+ServerImage, "--set-string", `podAnnotations.kvstore\.dev/image-id=`+strings.TrimPrefix(strings.TrimSpace(id), "sha256:")); err != nil {
		return 0, err
	}
	if _, err := c.Run(ctx, "", "-n", OperatorNamespace, "rollout", "status", "deployment/"+OperatorRelease+"-operator", "--timeout=10m"); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// uninstall removes the operator when this process installed it and no
// other process uses it.
func uninstall() error {
	if usersLock == nil {
		return nil
	}
	usersLock.Close()
	lock, err := flock("install", syscall.LOCK_EX)
	if err != nil {
		return err
	}
	defer lock.Close()
	last, err := flock("users", syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return nil // another test process uses it, and will remove it
	} else if err != nil {
		return err
	}
	defer last.Close()
	c, err := up()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var errs []error
	if err := c.helm(ctx, "uninstall", OperatorRelease, "--namespace", OperatorNamespace, "--ignore-not-found", "--wait", "--timeout", "5m"); err != nil {
		errs = append(errs, err)
	}
	for _, obj := range []string{"crd/kvstores.kvstore.dev", "namespace/" + OperatorNamespace} {
		if _, err := c.Run(ctx, "", "delete", obj, "--ignore-not-found", "--wait=true", "--timeout=5m"); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// flock opens the lock file named and locks it with how.
func flock(name string, how int) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "kvstore-kube."+name+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return f, nil
}

// helm runs bin/helm (or $HELM) against the cluster, with its cache and
// configuration in a directory of its own.
func (c *Cluster) helm(ctx context.Context, args ...string) error {
	bin := os.Getenv("HELM")
	if bin == "" {
		bin = filepath.Join(harness.Root(), "bin", "helm")
	}
	home := filepath.Join(os.TempDir(), "kvstore-kube-helm")
	cmd := exec.CommandContext(ctx, bin, append(args, "--kubeconfig", c.Kubeconfig)...)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

func run(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = harness.Root()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

func output(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return string(out), nil
}

func restrictedNamespace(name string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: %s
  labels:
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/enforce-version: latest
`, name)
}
