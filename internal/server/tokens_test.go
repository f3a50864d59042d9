package server

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"kvstore.dev/kvstore/internal/config"
	"kvstore.dev/kvstore/test/harness"
)

// TestTokensReloadWithoutRestart: tokens added to auth.tokens_file are
// accepted, tokens removed from it refused, and a token_file's new secret
// replaces the old one, each within seconds and without a restart; a
// broken file keeps the tokens in force; a steady client sees no failure.
func TestTokensReloadWithoutRestart(t *testing.T) {
	dir := t.TempDir()
	tokensFile := filepath.Join(dir, "tokens.yaml")
	secretFile := filepath.Join(dir, "ci.token")
	write := func(path, body string) {
		t.Helper()
		if err := os.WriteFile(path+".tmp", []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Fatal(err)
		}
	}
	const (
		steady = "steady-admin-token-0123"
		alice  = "alice-token-0123456789"
		bob    = "bob-token-012345678901"
		ci1    = "ci-token-first-0123456"
		ci2    = "ci-token-second-012345"
	)
	tokenEntry := func(name, token, role string) string {
		return fmt.Sprintf("  - {name: %s, token: %s, role: %s, prefixes: [app/]}\n", name, token, role)
	}
	write(tokensFile, "tokens:\n"+tokenEntry("alice", alice, "readwrite"))
	write(secretFile, ci1+"\n")
	r := start(t, func(c *config.Config) {
		c.Auth.Tokens = []config.Token{
			{Name: "steady", Token: steady, Role: "admin"},
			{Name: "ci", TokenFile: secretFile, Role: "readonly"},
		}
		c.Auth.TokensFile = tokensFile
	})
	url := "http://" + r.api + "/api/v1/kv/app/k"
	status := func(token string) int {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return -1
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	becomes := func(what, token string, want int) {
		t.Helper()
		harness.Eventually(t, what, 10*time.Second, func() error {
			if got := status(token); got != want {
				return fmt.Errorf("status %d, want %d", got, want)
			}
			return nil
		})
	}
	if code, _ := request(t, "PUT", url, steady, "v"); code != 201 {
		t.Fatalf("PUT: %d", code)
	}

	// The steady client's token never changes: none of its requests may
	// fail while the set is swapped under it.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []int
	n := 0
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			code := status(steady)
			mu.Lock()
			n++
			if code != 200 {
				failures = append(failures, code)
			}
			mu.Unlock()
		}
	})

	becomes("alice is accepted", alice, 200)
	if got := status(bob); got != 401 {
		t.Fatalf("bob before he is added: %d, want 401", got)
	}
	write(tokensFile, "tokens:\n"+tokenEntry("alice", alice, "readwrite")+tokenEntry("bob", bob, "readonly"))
	becomes("bob, added to the file, is accepted", bob, 200)
	write(tokensFile, "tokens:\n"+tokenEntry("bob", bob, "readonly"))
	becomes("alice, removed from the file, is refused", alice, 401)

	write(tokensFile, "tokens:\n  - {name: bob, token: short, role: readonly}\n")
	harness.Eventually(t, "the broken file is refused", 10*time.Second, func() error {
		if !strings.Contains(r.logs.String(), "token reload failed") {
			return errors.New("no reload failure logged")
		}
		return nil
	})
	if got := status(bob); got != 200 {
		t.Errorf("bob after a broken file: %d, want 200 (the previous tokens stay)", got)
	}

	write(tokensFile, "tokens:\n"+tokenEntry("bob", bob, "readonly"))

	becomes("ci's first secret is accepted", ci1, 200)
	write(secretFile, ci2+"\n")
	becomes("ci's new secret is accepted", ci2, 200)
	if got := status(ci1); got != 401 {
		t.Errorf("ci's old secret: %d, want 401", got)
	}

	close(stop)
	wg.Wait()
	if len(failures) > 0 || n < 10 {
		t.Errorf("the steady client: %d requests, failures %v", n, failures)
	}
	logs := r.logs.String()
	for _, secret := range []string{alice, bob, ci1, ci2, steady} {
		if strings.Contains(logs, secret) {
			t.Errorf("a token appears in the log")
		}
	}
	if !strings.Contains(logs, `"msg":"tokens reloaded"`) {
		t.Errorf("no reload logged")
	}
}
