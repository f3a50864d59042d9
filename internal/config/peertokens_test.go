package config

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPeerTokenFile: cluster.peer_token_file (--peer-token-file) may hold several tokens, one
// per line; the server re-reads it (PeerTokenReloadFile) unless
// KVSTORE_PEER_TOKEN overrides it; a short token is refused, naming the
// field and not the token.
func TestPeerTokenFile(t *testing.T) {
	dir := t.TempDir()
	file := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	two := file("two", "# B signs, A still accepted\nnext-token-0123456789\ncurrent-token-0123456789\n")
	short := file("short", "current-token-0123456789\nshort\n")
	base := []string{"--node-id", "n0", "--bootstrap-node", "n0", "--peer-advertise", "127.0.0.1:7000"}
	load := func(path string, env func(string) string) (Config, error) {
		return Load(append([]string{"--config", writeFile(t, "cluster: {enabled: true, peer_token_file: "+path+"}")}, base...), env, io.Discard)
	}

	cfg, err := load(two, noenv)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Cluster.PeerTokenReloadFile(); got != two {
		t.Errorf("PeerTokenReloadFile() = %q, want %q", got, two)
	}
	if !strings.HasPrefix(cfg.Cluster.PeerToken, "# B signs") || !strings.Contains(cfg.Cluster.PeerToken, "current-token") {
		t.Errorf("PeerToken does not hold the file's lines")
	}

	env := func(k string) string {
		if k == EnvPeerToken {
			return "from-the-environment-0123"
		}
		return ""
	}
	cfg, err = load(two, env)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Cluster.PeerTokenReloadFile(); got != "" || cfg.Cluster.PeerToken != "from-the-environment-0123" {
		t.Errorf("with %s: PeerTokenReloadFile() = %q, want none (the variable wins)", EnvPeerToken, got)
	}

	cfg, err = Load(append([]string{"--peer-token-file", two}, base...), noenv, io.Discard)
	if err != nil || cfg.Cluster.PeerTokenReloadFile() != two {
		t.Errorf("--peer-token-file: %v, reload file %q", err, cfg.Cluster.PeerTokenReloadFile())
	}

	_, err = load(short, noenv)
	if err == nil || !strings.Contains(err.Error(), "cluster.peer_token_file") || !strings.Contains(err.Error(), "line 2") || strings.Contains(err.Error(), "short\n") {
		t.Errorf("a short second token: %v, want an error naming the field and the line", err)
	}
}
