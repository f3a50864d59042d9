package config

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kvstore.dev/kvstore/internal/auth"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func noenv(string) string { return "" }

func TestDefaultsAreValid(t *testing.T) {
	cfg, err := Load(nil, noenv, io.Discard)
	if err != nil {
		t.Fatalf("Load with no arguments: %v", err)
	}
	if cfg.Listen != ":8080" || cfg.DebugListen != "127.0.0.1:6060" || cfg.DataDir != "./data" ||
		cfg.Limits.MaxKeyBytes != 1024 || cfg.Limits.MaxValueBytes != 1<<20 || cfg.Log.Format != "json" || len(cfg.Auth.Tokens) != 0 {
		t.Errorf("defaults: %+v", cfg)
	}
}

func TestFileThenFlagsThenEnv(t *testing.T) {
	file := writeFile(t, `
listen: 127.0.0.1:9000
data_dir: /from/file
limits: {max_value_bytes: 2048}
log: {level: debug}
http: {shutdown_timeout: 3s}
auth:
  tokens:
    - {name: app, sha256: "`+strings.Repeat("ab", 32)+`", role: readwrite, prefixes: ["app/"]}
`)
	env := map[string]string{EnvAdminToken: "env-admin-token-123456"}
	cfg, err := Load([]string{"--config", file, "--listen", "127.0.0.1:9100", "--debug-listen", "off", "--log-format", "text"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:9100" {
		t.Errorf("flag did not override file: listen = %q", cfg.Listen)
	}
	if cfg.DataDir != "/from/file" || cfg.Limits.MaxValueBytes != 2048 || cfg.Limits.MaxKeyBytes != 1024 || cfg.Log.Level != "debug" || cfg.Log.Format != "text" || cfg.DebugListen != "" {
		t.Errorf("merged config: %+v", cfg)
	}
	if cfg.HTTP.ShutdownTimeout.D() != 3*time.Second || cfg.HTTP.ReadHeaderTimeout.D() != 5*time.Second {
		t.Errorf("durations: %+v", cfg.HTTP)
	}
	ps, err := cfg.Principals()
	if err != nil || len(ps) != 2 || ps[1].Role != auth.RoleAdmin || ps[0].Prefixes[0] != "app/" {
		t.Fatalf("principals %+v, %v", ps, err)
	}
	if p, ok := auth.NewAuthenticator(ps).Authenticate("env-admin-token-123456"); !ok || !p.CanAdmin() {
		t.Error("KVSTORE_ADMIN_TOKEN is not an admin token")
	}
}

// TestInvalidConfig checks that each bad setting is refused with an error
// naming the field.
func TestInvalidConfig(t *testing.T) {
	tests := map[string]struct {
		yaml string
		args []string
		want string
	}{
		"listen not host:port":      {args: []string{"--listen", "8080"}, want: "listen:"},
		"bad port":                  {yaml: "listen: ':99999'", want: "listen:"},
		"bad debug listen":          {yaml: "debug_listen: nope", want: "debug_listen:"},
		"empty data dir":            {args: []string{"--data-dir", ""}, want: "data_dir: must not be empty"},
		"key limit zero":            {yaml: "limits: {max_key_bytes: 0}", want: "limits.max_key_bytes"},
		"key limit too large":       {yaml: "limits: {max_key_bytes: 100000}", want: "limits.max_key_bytes"},
		"value limit too large":     {yaml: "limits: {max_value_bytes: 1000000000}", want: "limits.max_value_bytes"},
		"log level":                 {args: []string{"--log-level", "loud"}, want: "log.level"},
		"log format":                {yaml: "log: {format: xml}", want: "log.format"},
		"bad duration":              {yaml: "http: {read_timeout: soon}", want: "invalid duration \"soon\""},
		"negative duration":         {yaml: "ttl: {sweep_interval: -1s}", want: "ttl.sweep_interval"},
		"unknown key":               {yaml: "listn: ':1'", want: "unknown field \"listn\""},
		"removed store.max_batch":   {yaml: "store: {max_batch: 1000}", want: "store.max_batch: removed with the single-node write-ahead log"},
		"wrong type":                {yaml: "limits: {max_key_bytes: big}", want: "limits.max_key_bytes"},
		"token without name":        {yaml: "auth: {tokens: [{token: 0123456789abcdefgh, role: admin}]}", want: "auth.tokens[0].name"},
		"token without secret":      {yaml: "auth: {tokens: [{name: a, role: admin}]}", want: "auth.tokens[0]: exactly one of"},
		"token with two secrets":    {yaml: "auth: {tokens: [{name: a, token: 0123456789abcdefgh, token_file: /x, role: admin}]}", want: "exactly one of"},
		"short token":               {yaml: "auth: {tokens: [{name: a, token: short, role: admin}]}", want: "auth.tokens[0].token: must be at least 16"},
		"bad sha256":                {yaml: "auth: {tokens: [{name: a, sha256: xyz, role: admin}]}", want: "auth.tokens[0].sha256"},
		"bad role":                  {yaml: "auth: {tokens: [{name: a, token: 0123456789abcdefgh, role: root}]}", want: "auth.tokens[0].role: \"root\""},
		"duplicate names":           {yaml: "auth: {tokens: [{name: a, token: 0123456789abcdefgh, role: admin}, {name: a, token: 0123456789abcdefgX, role: admin}]}", want: "auth.tokens[1].name"},
		"empty prefix":              {yaml: "auth: {tokens: [{name: a, token: 0123456789abcdefgh, role: admin, prefixes: ['']}]}", want: "auth.tokens[0].prefixes[0]"},
		"prefix without slash":      {yaml: "auth: {tokens: [{name: a, token: 0123456789abcdefgh, role: readwrite, prefixes: ['app/', 'apple']}]}", want: `auth.tokens[0].prefixes[1]: "apple" must end with "/"`},
		"prefix with leading /":     {yaml: "auth: {tokens: [{name: a, token: 0123456789abcdefgh, role: readwrite, prefixes: ['/app/']}]}", want: `auth.tokens[0].prefixes[0]: "/app/" must start with a path segment`},
		"prefix with dot-dot":       {yaml: "auth: {tokens: [{name: a, token: 0123456789abcdefgh, role: readwrite, prefixes: ['a/../']}]}", want: `auth.tokens[0].prefixes[0]: "a/../" must not have a ".." path segment`},
		"extra argument":            {args: []string{"serve"}, want: "unexpected argument"},
		"unknown flag":              {args: []string{"--lissen", ":1"}, want: "flag provided but not defined"},
		"missing file":              {args: []string{"--config", "/does/not/exist.yaml"}, want: "--config"},
		"bad yaml":                  {yaml: "listen: [", want: "parse YAML"},
		"handoff too long":          {yaml: "cluster: {enabled: true, handoff_timeout: 2m}", want: "cluster.handoff_timeout"},
		"negative handoff":          {yaml: "cluster: {enabled: true, handoff_timeout: -1s}", want: "cluster.handoff_timeout"},
		"ready grace too long":      {yaml: "cluster: {enabled: true, ready_grace: 6m}", want: "cluster.ready_grace"},
		"negative ready grace":      {yaml: "cluster: {enabled: true, ready_grace: -1s}", want: "cluster.ready_grace"},
		"list page bytes tiny":      {yaml: "limits: {max_list_page_bytes: 10}", want: "limits.max_list_page_bytes"},
		"connections under watches": {yaml: "http: {max_connections: 100}\nwatch: {max_watches: 100}", want: "http.max_connections"},
		"no watches":                {yaml: "watch: {max_watches: 0}", want: "watch.max_watches:"},
		"per token over global":     {yaml: "watch: {max_watches: 10, max_watches_per_token: 11}", want: "watch.max_watches_per_token"},
		"negative flush interval":   {yaml: "store: {flush_interval: -1s}", want: "store.flush_interval"},
		"flush interval too long":   {yaml: "store: {flush_interval: 2h}", want: "store.flush_interval"},
		"negative flush keys":       {yaml: "store: {flush_max_keys: -1}", want: "store.flush_max_keys"},
		"negative flush bytes":      {yaml: "store: {flush_max_bytes: -1}", want: "store.flush_max_bytes"},
		"flush keys wrong type":     {yaml: "store: {flush_max_keys: many}", want: "store.flush_max_keys"},
		"tls cert without key":      {yaml: "api: {tls: {cert_file: /c.crt}}", want: "api.tls.key_file: must be set when api.tls.cert_file is"},
		"tls key without cert":      {args: []string{"--tls-key-file", "/k.key"}, want: "api.tls.cert_file: must be set when api.tls.key_file is"},
		"client ca without tls":     {yaml: "api: {tls: {client_ca_file: /ca.crt}}", want: "api.tls.client_ca_file: needs api.tls.cert_file"},
		"tls unknown key":           {yaml: "api: {tls: {cert: /c.crt}}", want: `unknown field "cert"`},
		"bootstrap gate, no join":   {args: []string{"--node-id", "n0", "--bootstrap-node", "n0", "--bootstrap-allowed-file", "/x"}, want: "cluster.bootstrap_allowed_file: needs cluster.join"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			args := tc.args
			if tc.yaml != "" {
				args = append([]string{"--config", writeFile(t, tc.yaml)}, args...)
			}
			_, err := Load(args, noenv, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestTokenFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	os.WriteFile(good, []byte("file-token-0123456789\n"), 0o600)
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("abc\n"), 0o600)
	cfg := Default()
	cfg.Auth.Tokens = []Token{{Name: "f", TokenFile: good, Role: auth.RoleReadOnly}}
	ps, err := cfg.Principals()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := auth.NewAuthenticator(ps).Authenticate("file-token-0123456789"); !ok {
		t.Error("token from file not accepted (trailing newline must be trimmed)")
	}
	for _, tf := range []string{short, filepath.Join(dir, "missing")} {
		cfg.Auth.Tokens[0].TokenFile = tf
		if _, err := cfg.Principals(); err == nil || !strings.Contains(err.Error(), "auth.tokens[0].token_file") {
			t.Errorf("token_file %s: err = %v", tf, err)
		}
	}
}

func TestAPITLSFromFileAndFlags(t *testing.T) {
	tests := map[string]struct {
		yaml string
		args []string
		want APITLS
	}{
		"off by default": {},
		"from the file":  {yaml: "api: {tls: {cert_file: /f.crt, key_file: /f.key, client_ca_file: /ca.crt}}", want: APITLS{"/f.crt", "/f.key", "/ca.crt"}},
		"flags override": {
			yaml: "api: {tls: {cert_file: /f.crt, key_file: /f.key}}",
			args: []string{"--tls-cert-file", "/g.crt", "--tls-key-file", "/g.key", "--tls-client-ca-file", "/g-ca.crt"},
			want: APITLS{"/g.crt", "/g.key", "/g-ca.crt"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			args := tc.args
			if tc.yaml != "" {
				args = append([]string{"--config", writeFile(t, tc.yaml)}, args...)
			}
			cfg, err := Load(args, noenv, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.API.TLS != tc.want || cfg.API.TLS.Enabled() != (tc.want.CertFile != "") {
				t.Errorf("api.tls = %+v, want %+v", cfg.API.TLS, tc.want)
			}
		})
	}
}

// TestTokensFile: auth.tokens_file adds tokens, validated like the inline
// ones, each error naming the file and the entry.
func TestTokensFile(t *testing.T) {
	tests := map[string]struct {
		file    string // "" = missing
		want    []string
		wantErr string
	}{
		"adds tokens": {
			file: "tokens:\n  - {name: ro, token: readonly-token-0123, role: readonly, prefixes: [app/]}\n  - {name: rw, sha256: \"" + strings.Repeat("cd", 32) + "\", role: readwrite}\n",
			want: []string{"inline", "ro", "rw"},
		},
		"empty document":          {file: "\n", want: []string{"inline"}},
		"empty list":              {file: "tokens: []\n", want: []string{"inline"}},
		"missing":                 {wantErr: "auth.tokens_file: open"},
		"bad yaml":                {file: "tokens: [", wantErr: "auth.tokens_file: "},
		"unknown key":             {file: "tokenz: []\n", wantErr: `unknown field "tokenz"`},
		"bad role":                {file: "tokens: [{name: x, token: readonly-token-0123, role: root}]\n", wantErr: `tokens[0].role: "root"`},
		"short token":             {file: "tokens: [{name: x, token: short, role: admin}]\n", wantErr: "tokens[0].token: must be at least 16"},
		"bad prefix":              {file: "tokens: [{name: x, token: readonly-token-0123, role: admin, prefixes: [app]}]\n", wantErr: "tokens[0].prefixes[0]"},
		"name of an inline token": {file: "tokens: [{name: inline, token: readonly-token-0123, role: admin}]\n", wantErr: `tokens[0].name: "inline" is used by another token`},
		"bad token_file":          {file: "tokens: [{name: x, token_file: /does/not/exist, role: admin}]\n", wantErr: "tokens[0].token_file"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tokens.yaml")
			if tc.file != "" {
				if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cfg, err := Load([]string{"--config", writeFile(t, "auth: {tokens: [{name: inline, token: inline-token-012345, role: admin}]}"), "--tokens-file", path}, noenv, io.Discard)
			if err != nil {
				t.Fatalf("Load: %v (the file is read by Principals, not Load)", err)
			}
			ps, err := cfg.Principals()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "auth.tokens_file") {
					t.Fatalf("Principals: %v, want an error naming auth.tokens_file and %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range ps {
				got = append(got, p.Name)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("principals %v, want %v", got, tc.want)
			}
			if !cfg.Auth.Reloadable() {
				t.Error("Reloadable() = false with a tokens_file")
			}
		})
	}
}

// TestFlushPolicyFromFile: the store's flush fields default to 0 (each
// write path's own default) and are read from the file.
func TestFlushPolicyFromFile(t *testing.T) {
	if s := Default().Store; s.FlushInterval != 0 || s.FlushMaxKeys != 0 || s.FlushMaxBytes != 0 {
		t.Errorf("default store section %+v, want the flush fields 0", s)
	}
	cfg, err := Load([]string{"--config", writeFile(t, "store: {flush_interval: 2s, flush_max_keys: 500, flush_max_bytes: 1048576}")}, noenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.Store; s.FlushInterval.D() != 2*time.Second || s.FlushMaxKeys != 500 || s.FlushMaxBytes != 1<<20 {
		t.Errorf("store section %+v", s)
	}
}
