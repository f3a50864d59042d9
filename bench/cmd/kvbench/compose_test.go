package main

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"kvstore.dev/kvstore/bench/internal/keyspace"
	"kvstore.dev/kvstore/bench/internal/mdsection"
	"kvstore.dev/kvstore/bench/internal/report"
)

func TestParseComposeFlags(t *testing.T) {
	base := []string{"-ca", "ca.crt", "-token-file", "admin.token"}
	tests := []struct {
		name    string
		args    []string
		check   func(*composeConfig) bool
		wantErr string
	}{
		{
			name: "defaults",
			args: base,
			check: func(c *composeConfig) bool {
				return c.httpsURL == "https://localhost:18444" && c.directURL == "http://127.0.0.1:18090" &&
					slices.Equal(c.targets, []string{report.Direct, report.NginxHTTPS, report.NginxHTTPSH1}) &&
					slices.Equal(c.clients, []int{1, 16, 64}) && c.judgeClients == 64 &&
					c.duration == 5*time.Second && c.valueSize == 256 && c.out == "docs/benchmarks.md"
			},
		},
		{
			name: "urls are normalised, targets put in presentation order, cpu groups kept",
			args: append(slices.Clone(base), "-https-url", "https://localhost:1/", "-direct-url", "http://127.0.0.1:2",
				"-targets", "nginx-https-h1,direct", "-cpu", "nginx=10,11", "-cpu", "docker engine=12"),
			check: func(c *composeConfig) bool {
				return c.httpsURL == "https://localhost:1" && c.directURL == "http://127.0.0.1:2" &&
					slices.Equal(c.targets, []string{report.Direct, report.NginxHTTPSH1}) &&
					len(c.cpuGroups) == 2 && c.cpuGroups[0].name == "nginx" && slices.Equal(c.cpuGroups[0].roots, []int{10, 11}) &&
					c.cpuGroups[1].name == "docker engine"
			},
		},
		{
			name:  "direct alone needs no CA",
			args:  []string{"-token-file", "t", "-targets", "direct"},
			check: func(c *composeConfig) bool { return c.caFile == "" },
		},
		{name: "CA missing", args: []string{"-token-file", "t"}, wantErr: "-ca is required"},
		{name: "token missing", args: []string{"-ca", "c"}, wantErr: "-token-file is required"},
		{name: "https url over http", args: append(slices.Clone(base), "-https-url", "http://localhost:1"), wantErr: "want a https:// URL"},
		{name: "direct url over https", args: append(slices.Clone(base), "-direct-url", "https://127.0.0.1:1"), wantErr: "want a http:// URL"},
		{name: "url with a path", args: append(slices.Clone(base), "-https-url", "https://localhost:1/api/"), wantErr: "only scheme, host and port"},
		{name: "url without host", args: append(slices.Clone(base), "-direct-url", "http://:1"), wantErr: "has no host"},
		{name: "unknown target", args: append(slices.Clone(base), "-targets", "direct,etcd"), wantErr: `unknown target "etcd"`},
		{name: "no target", args: append(slices.Clone(base), "-targets", ","), wantErr: "no target"},
		{name: "bad clients", args: append(slices.Clone(base), "-clients", "0"), wantErr: "-clients"},
		{name: "cpu group twice", args: append(slices.Clone(base), "-cpu", "a=1", "-cpu", "a=2"), wantErr: "given twice"},
		{name: "too many ops for disjoint key spaces", args: append(slices.Clone(base), "-max-ops", "1099511627776"), wantErr: "-max-ops"},
		{name: "zero duration", args: append(slices.Clone(base), "-duration", "0s"), wantErr: "-duration"},
		{name: "stray argument", args: append(slices.Clone(base), "extra"), wantErr: "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &composeConfig{}
			err := cfg.setup(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(cfg) {
				t.Errorf("unexpected config %+v", cfg)
			}
		})
	}
}

func TestParseCPUGroup(t *testing.T) {
	tests := []struct {
		in      string
		want    cpuGroup
		wantErr bool
	}{
		{in: "nginx=1554", want: cpuGroup{name: "nginx", roots: []int{1554}}},
		{in: " docker engine = 1366, 1268,1366 ", want: cpuGroup{name: "docker engine", roots: []int{1366, 1268}}},
		{in: "nginx", wantErr: true},
		{in: "=1", wantErr: true},
		{in: "nginx=", wantErr: true},
		{in: "nginx=x", wantErr: true},
		{in: "nginx=-3", wantErr: true},
		{in: "kvbench=1", wantErr: true},
		{in: "other=1", wantErr: true},
		{in: "a|b=1", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseCPUGroup(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, wantErr %v", err, tt.wantErr)
			}
			if got.name != tt.want.name || !slices.Equal(got.roots, tt.want.roots) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	var f cpuGroupsFlag
	for _, s := range []string{"app=1", "nginx=2,3"} {
		if err := f.Set(s); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.String(); got != "app=1 nginx=2,3" {
		t.Errorf("String() = %q", got)
	}
}

func TestTargetOrder(t *testing.T) {
	targets := []string{"a", "b", "c"}
	tests := []struct {
		level int
		want  []string
	}{
		{0, []string{"a", "b", "c"}},
		{1, []string{"c", "b", "a"}},
		{2, []string{"a", "b", "c"}},
	}
	for _, tt := range tests {
		if got := targetOrder(targets, tt.level); !slices.Equal(got, tt.want) {
			t.Errorf("targetOrder(level %d) = %v, want %v", tt.level, got, tt.want)
		}
	}
	if !slices.Equal(targets, []string{"a", "b", "c"}) {
		t.Errorf("targetOrder changed its argument: %v", targets)
	}
}

func TestRunSeedsGiveDisjointKeys(t *testing.T) {
	const seed = 0x0123456789abcdef
	seqs := []uint64{0, 1, 2, 1000, 1<<20 - 1, 1<<40 - 1}
	owner := map[string]int{}
	key := make([]byte, keyspace.KeySize)
	for run := range 9 {
		ks := keyspace.New(runSeed(seed, run))
		for _, seq := range seqs {
			k := string(ks.Key(key, seq))
			if prev, ok := owner[k]; ok {
				t.Fatalf("run %d seq %d writes key %s of run %d", run, seq, k, prev)
			}
			owner[k] = run
		}
	}
	// The XOR of two run seeds must have no bit below 40 and not be zero.
	for a := range 9 {
		for b := a + 1; b < 9; b++ {
			if x := runSeed(seed, a) ^ runSeed(seed, b); x == 0 || x&(1<<40-1) != 0 {
				t.Errorf("runs %d and %d: seeds differ by %#x", a, b, x)
			}
		}
	}
}

func TestDisjoint(t *testing.T) {
	got := disjoint([][]int{{1, 2, 2}, {2, 3}, {1}, {}})
	want := [][]int{{1, 2}, {3}, {}, {}}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if !slices.Equal(got[i], want[i]) {
			t.Errorf("set %d = %v, want %v", i, got[i], want[i])
		}
	}
}

func TestCheckProtocol(t *testing.T) {
	cs := &tls.ConnectionState{Version: tls.VersionTLS13}
	tests := []struct {
		name    string
		target  string
		major   int
		cs      *tls.ConnectionState
		wantErr bool
	}{
		{"h2 over TLS", report.NginxHTTPS, 2, cs, false},
		{"h2 target got h1", report.NginxHTTPS, 1, cs, true},
		{"h1 over TLS", report.NginxHTTPSH1, 1, cs, false},
		{"h1 target got h2", report.NginxHTTPSH1, 2, cs, true},
		{"TLS target in cleartext", report.NginxHTTPSH1, 1, nil, true},
		{"direct", report.Direct, 1, nil, false},
		{"direct over TLS", report.Direct, 1, cs, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkProtocol(composeTargets[tt.target], tt.major, tt.cs)
			if (err != nil) != tt.wantErr {
				t.Errorf("error = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
	if got := protocolName("HTTP/2.0", cs); got != "HTTP/2.0, TLS 1.3" {
		t.Errorf("protocolName = %q", got)
	}
	if got := protocolName("HTTP/1.1", nil); got != "HTTP/1.1, cleartext" {
		t.Errorf("protocolName = %q", got)
	}
}

// fakeAPI is an in-memory stand-in for the kvstore API as the compose
// benchmark drives it: GET /api/v1/status, PUT and GET /api/v1/kv/{key}.
func fakeAPI(token string) http.Handler {
	var mu sync.Mutex
	data := map[string][]byte{}
	mux := http.NewServeMux()
	authorized := func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return false
		}
		return true
	}
	mux.HandleFunc("GET /api/v1/status", func(w http.ResponseWriter, r *http.Request) {
		if authorized(w, r) {
			io.WriteString(w, `{"version":"v-test","keys":0}`)
		}
	})
	mux.HandleFunc("PUT /api/v1/kv/{key}", func(w http.ResponseWriter, r *http.Request) {
		if !authorized(w, r) {
			return
		}
		v, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		_, existed := data[r.PathValue("key")]
		data[r.PathValue("key")] = v
		mu.Unlock()
		if existed {
			http.Error(w, "a benchmark PUT overwrote a key", http.StatusConflict)
			return
		}
		w.WriteHeader(http.StatusCreated)
	})
	mux.HandleFunc("GET /api/v1/kv/{key}", func(w http.ResponseWriter, r *http.Request) {
		if !authorized(w, r) {
			return
		}
		mu.Lock()
		v, ok := data[r.PathValue("key")]
		mu.Unlock()
		if !ok {
			http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
			return
		}
		w.Write(v)
	})
	return mux
}

func TestRunComposeAgainstFakeStack(t *testing.T) {
	if testing.Short() {
		t.Skip("runs load phases")
	}
	const token = "test-token-0123456789"
	api := fakeAPI(token) // one store behind both paths, as in the stack
	nginx := httptest.NewUnstartedServer(api)
	nginx.EnableHTTP2 = true
	nginx.StartTLS()
	defer nginx.Close()
	direct := httptest.NewServer(api)
	defer direct.Close()

	dir := t.TempDir()
	caFile, tokenFile, out := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "admin.token"), filepath.Join(dir, "benchmarks.md")
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: nginx.Certificate().Raw})
	const doc = "# Benchmarks\n\n<!-- kvbench:begin -->\nkvbench table\n<!-- kvbench:end -->\n"
	for name, content := range map[string]string{caFile: string(caPEM), tokenFile: token + "\n", out: doc} {
		if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Skipf("cannot start sleep: %v", err)
	}
	defer func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() }()

	cfg := &composeConfig{}
	err := cfg.setup([]string{
		"-https-url", nginx.URL, "-direct-url", direct.URL, "-ca", caFile, "-token-file", tokenFile,
		"-clients", "1,4", "-judge-clients", "4", "-duration", "150ms", "-max-ops", "300",
		"-app-pid", strconv.Itoa(os.Getpid()), "-cpu", "sleeper=" + strconv.Itoa(sleeper.Process.Pid),
		"-stack", "fake stack", "-out", out,
	})
	if err != nil {
		t.Fatal(err)
	}
	for run := range 2 { // the second run replaces the section the first one added
		cfg.seed = 0 // a fresh random seed, as a new invocation would draw
		if err := cfg.run(context.Background()); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	if !strings.HasPrefix(got, doc) {
		t.Errorf("the kvbench section or the text before it changed:\n%s", got)
	}
	if n := strings.Count(got, mdsection.Compose.Begin); n != 1 || strings.Count(got, mdsection.Compose.End) != 1 {
		t.Errorf("want exactly one compose section, found %d begin markers:\n%s", n, got)
	}
	for _, want := range []string{
		"| direct | HTTP/1.1, cleartext | 4 |", "| nginx-https | HTTP/2.0, TLS 1.3 | 4 | 1 |",
		"| nginx-https-h1 | HTTP/1.1, TLS 1.3 | 4 |", "nginx-https PUT ÷ direct PUT", "Stack: fake stack",
		"App version (`/api/v1/status`): v-test", "App TCP accepts", "| sleeper |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "failed:") || strings.Contains(got, "Errors:") {
		t.Errorf("report shows failures:\n%s", got)
	}
}

func TestRunComposeRefusesWrongToken(t *testing.T) {
	direct := httptest.NewServer(fakeAPI("right-token-0123456"))
	defer direct.Close()
	dir := t.TempDir()
	tokenFile, out := filepath.Join(dir, "admin.token"), filepath.Join(dir, "benchmarks.md")
	if err := os.WriteFile(tokenFile, []byte("wrong-token-0123456"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := &composeConfig{}
	err := cfg.setup([]string{"-targets", "direct", "-direct-url", direct.URL, "-token-file", tokenFile,
		"-clients", "1", "-duration", "50ms", "-out", out})
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "left unchanged") {
		t.Errorf("run with a wrong token = %v, want a failure", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("%s was written despite the failure (stat: %v)", out, err)
	}
}
