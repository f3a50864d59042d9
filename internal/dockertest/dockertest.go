// Package dockertest holds what the tests that run the project's own
// containers on the real Docker engine share: the check that an engine
// answers, and building the images offline with hack/images.sh.
package dockertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Root is the repository's root directory.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Require fails (with CI set) or skips loudly (elsewhere) when no Docker
// engine answers. what names the test in the -short skip message.
func Require(t testing.TB, what string) {
	t.Helper()
	if testing.Short() {
		t.Skip(what + " skipped with -short")
	}
	out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput()
	if err == nil {
		return
	}
	msg := fmt.Sprintf("no Docker engine answers (docker info: %v: %s)", err, strings.TrimSpace(string(out)))
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip("SKIPPED: " + msg)
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
