package harness

import (
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

// ArtifactsEnv names the directory where tests keep what outlives them:
// process logs, histories, screenshots. Unset, each test uses a temporary
// directory.
const ArtifactsEnv = "KVSTORE_TEST_ARTIFACTS"

// PollInterval paces every poll loop of the package.
const PollInterval = 25 * time.Millisecond

// binaries are the binaries Binary knows: the environment variable that
// names a prebuilt one (the Makefile's test target sets them), and the
// build, once per test process, of the package otherwise.
var binaries = map[string]struct {
	env   string
	build func() (string, error)
}{
	"server":   {"KVSTORE_SERVER_BIN", sync.OnceValues(func() (string, error) { return build("server", "./cmd/server") })},
	"operator": {"KVSTORE_OPERATOR_BIN", sync.OnceValues(func() (string, error) { return build("operator", "./cmd/operator") })},
	"kvctl":    {"KVSTORE_KVCTL_BIN", sync.OnceValues(func() (string, error) { return build("kvctl", "./cmd/kvctl") })},
}

// buildDir is where Binary builds; Main removes it.
var buildDir = sync.OnceValues(func() (string, error) { return os.MkdirTemp("", "kvstore-harness-") })

// Root is the repository's root directory.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Binary returns the path of the named binary, "server", "operator" or
// "kvctl": the file $KVSTORE_SERVER_BIN, $KVSTORE_OPERATOR_BIN or
// $KVSTORE_KVCTL_BIN names, else one built
// with go build, once per test process, into a temporary directory (Main
// removes it). It skips the test in -short mode: building and running a
// binary takes seconds. It is safe for concurrent use.
func Binary(t testing.TB, name string) string {
	t.Helper()
	if testing.Short() {
		t.Skipf("skipping a test of the %s binary in -short mode", name)
	}
	b, ok := binaries[name]
	if !ok {
		t.Fatalf("harness.Binary: unknown binary %q (want server, operator or kvctl)", name)
	}
	if p := os.Getenv(b.env); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s: %v", b.env, err)
		}
		return p
	}
	p, err := b.build()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func build(name, pkg string) (string, error) {
	dir, err := buildDir()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, name)
	// "go test" puts $GOROOT/bin first in the PATH of the test binary.
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("cannot find the go command to build %s: %w", pkg, err)
	}
	cmd := exec.Command(goCmd, "build", "-o", bin, pkg)
	cmd.Dir = Root()
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build -o %s %s: %w\n%s", bin, pkg, err, out)
	}
	return bin, nil
}

// Main runs the tests and removes the binaries Binary built. Call it from
// an end-to-end package's TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if dir, err := buildDir(); err == nil {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

// FreeAddr returns a loopback address with a port that was free a moment
// ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// FreePort is FreeAddr's port.
func FreePort(t testing.TB) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(FreeAddr(t))
	n, _ := strconv.Atoi(port)
	return n
}

// Token returns a random admin token.
func Token() string { return "kvt-" + rand.Text() }

// Poll calls cond every PollInterval until it returns nil or timeout
// passes; it returns how long that took and cond's last error.
func Poll(timeout time.Duration, cond func() error) (time.Duration, error) {
	start := time.Now()
	for {
		err := cond()
		if err == nil || time.Since(start) > timeout {
			return time.Since(start), err
		}
		<-time.After(PollInterval) // pacing of the poll loop
	}
}

// Eventually is Poll that fails the test, naming what and cond's last
// error, when cond does not hold within timeout. It returns how long cond
// took to hold.
func Eventually(t testing.TB, what string, timeout time.Duration, cond func() error) time.Duration {
	t.Helper()
	took, err := Poll(timeout, cond)
	if err != nil {
		t.Fatalf("not true after %s: %s (last: %v)", timeout, what, err)
	}
	return took
}

// ArtifactsDir is where a test keeps what should outlive it: $ArtifactsEnv
// if set, else a temporary directory of the test.
func ArtifactsDir(t testing.TB) string {
	if dir := os.Getenv(ArtifactsEnv); dir != "" {
		return dir
	}
	return t.TempDir()
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// fileName makes a test or process name usable as a file name.
func fileName(s string) string { return unsafeName.ReplaceAllString(s, "_") }
