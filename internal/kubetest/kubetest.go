// Package kubetest starts a real Kubernetes control plane for tests:
// controller-runtime's envtest with the kube-apiserver, etcd and kubectl
// that hack/envtest-bins.sh builds from the Go module proxy into bin/k8s/.
// The KVStore CRD from config/crd/bases is installed.
//
// `make test` exports KUBEBUILDER_ASSETS after building the binaries. A test
// run without them fails (with CI set) or is skipped (locally) with the
// command that provides them.
package kubetest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"testing"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Root is the repository's root directory.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Assets finds the control-plane binaries: $KUBEBUILDER_ASSETS, else the
// newest bin/k8s/<version>-<os>-<arch> that hack/envtest-bins.sh built.
func Assets() string {
	if a := os.Getenv("KUBEBUILDER_ASSETS"); a != "" {
		return a
	}
	dirs, _ := filepath.Glob(filepath.Join(Root(), "bin", "k8s", "*-"+runtime.GOOS+"-"+runtime.GOARCH))
	sort.Strings(dirs)
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "kube-apiserver")); err == nil {
			return dirs[i]
		}
	}
	return ""
}

// ErrNoAssets says the control-plane binaries are missing.
var ErrNoAssets = errors.New("no kube-apiserver: run `hack/envtest-bins.sh` (make test does) or set KUBEBUILDER_ASSETS")

// Environment returns an envtest environment (not started) that installs
// the KVStore CRD and the CRDs in extraCRDDirs, or ErrNoAssets.
func Environment(extraCRDDirs ...string) (*envtest.Environment, error) {
	assets := Assets()
	if assets == "" {
		return nil, ErrNoAssets
	}
	return &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     append([]string{filepath.Join(Root(), "config", "crd", "bases")}, extraCRDDirs...),
		ErrorIfCRDPathMissing: true,
	}, nil
}

// MissingAssets handles ErrNoAssets in a TestMain: under CI it is a failure
// (exit code 1), locally the package's tests are skipped (exit code 0).
func MissingAssets(err error) int {
	fmt.Fprintln(os.Stderr, "kubetest:", err)
	if os.Getenv("CI") != "" {
		return 1
	}
	fmt.Fprintln(os.Stderr, "kubetest: skipping (set CI to make this a failure)")
	return 0
}

// Start starts a control plane with the KVStore CRD (and the CRDs in
// extraCRDDirs) installed, and stops it when the test ends.
func Start(t testing.TB, extraCRDDirs ...string) (*rest.Config, *envtest.Environment) {
	t.Helper()
	env, err := Environment(extraCRDDirs...)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start the control plane (kube-apiserver and etcd from %s): %v", env.BinaryAssetsDirectory, err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop the control plane: %v", err)
		}
	})
	return cfg, env
}

// Kubectl is the path of the kubectl built next to the kube-apiserver.
func Kubectl() string { return filepath.Join(Assets(), "kubectl") }
