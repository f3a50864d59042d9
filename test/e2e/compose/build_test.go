package compose_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestServerImageBuildsFromRepository: the server image's default is built
// from the repository's Dockerfile (`docker compose up --build`), not
// pulled from a registry where it was never published; every service that
// runs the server image can build it.
func TestServerImageBuildsFromRepository(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(composeDir, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Services map[string]struct {
			Image string `json:"image"`
			Build *struct {
				Context    string `json:"context"`
				Dockerfile string `json:"dockerfile"`
			} `json:"build"`
		} `json:"services"`
	}
	if err := yaml.Unmarshal(raw, &file); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	for _, name := range []string{"certs", "app", "backup"} {
		svc, ok := file.Services[name]
		if !ok {
			t.Fatalf("service %q missing", name)
		}
		if svc.Image != "${KVSTORE_IMAGE:-kvstore/kvstore:latest}" {
			t.Errorf("%s: image %q, want the KVSTORE_IMAGE variable with a local default", name, svc.Image)
		}
		if svc.Build == nil {
			t.Errorf("%s: no build section", name)
			continue
		}
		for _, f := range []string{svc.Build.Dockerfile, "go.mod"} {
			if _, err := os.Stat(filepath.Join(composeDir, svc.Build.Context, f)); err != nil {
				t.Errorf("%s: build context %q: %v", name, svc.Build.Context, err)
			}
		}
	}
}

// TestEnvFileNotCommitted: the real .env is the user's (gitignored); the
// repository ships .env.example.
func TestEnvFileNotCommitted(t *testing.T) {
	if _, err := os.Stat(filepath.Join(composeDir, ".env.example")); err != nil {
		t.Errorf(".env.example: %v", err)
	}
	root := filepath.Join(composeDir, "..", "..")
	if out, err := exec.Command("git", "-C", root, "ls-files", "deploy/compose/.env").Output(); err != nil || len(out) > 0 {
		t.Errorf("git ls-files deploy/compose/.env: %q, %v; want it untracked", out, err)
	}
	if err := exec.Command("git", "-C", root, "check-ignore", "-q", "deploy/compose/.env").Run(); err != nil {
		t.Errorf("deploy/compose/.env is not gitignored: %v", err)
	}
}
