// What the tests that run the project's own containers on the real Docker
// engine share: the check that an engine answers, one Docker suite at a
// time, and building the images offline with hack/images.sh.

package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// RequireDocker fails (with CI set) or skips loudly (elsewhere) when no
// Docker engine answers, and otherwise waits for the machine's Docker lock
// (held until t ends). what names the test in the -short skip message.
func RequireDocker(t testing.TB, what string) {
	t.Helper()
	if testing.Short() {
		t.Skip(what + " skipped with -short")
	}
	out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput()
	if err == nil {
		exclusive(t)
		return
	}
	msg := fmt.Sprintf("no Docker engine answers (docker info: %v: %s)", err, strings.TrimSpace(string(out)))
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip("SKIPPED: " + msg)
}

// exclusive holds a lock on the machine until t ends, so that the Docker
// suites of different test packages (which go test runs in parallel) take
// turns: they build the same image tags, and one suite's networks and
// veths coming and going abort another's browser requests
// (net::ERR_NETWORK_CHANGED in chromium).
func exclusive(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "kvstore-dockertest.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("docker test lock: %v", err)
	}
	start := time.Now()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("docker test lock: %v", err)
	}
	if waited := time.Since(start); waited > time.Second {
		t.Logf("harness: waited %s for another Docker suite", waited.Round(time.Second))
	}
	t.Cleanup(func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	})
}

// BuildImages runs hack/images.sh (offline, cached) from the repository
// root: the Debian base, nginx, the Go toolchain image and
// kvstore/kvstore:local.
func BuildImages(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	start := time.Now()
	build := exec.CommandContext(ctx, "bash", filepath.Join(Root(), "hack", "images.sh"))
	build.Dir = Root()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("hack/images.sh: %v\n%s", err, out)
	}
	t.Logf("hack/images.sh: images ready in %s", time.Since(start).Round(time.Second))
}
