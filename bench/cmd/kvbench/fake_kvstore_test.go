package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeKVStoreEnv makes the test binary act as a kvstore server that
// follows the contract kvbench drives (see runFakeKVStore).
const fakeKVStoreEnv = "KVBENCH_TEST_FAKE_KVSTORE"

func TestMain(m *testing.M) {
	// The test binary doubles as the child processes kvbench starts.
	if len(os.Args) > 1 && os.Args[1] == bareCommand {
		if err := runBare(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if os.Getenv(fakeKVStoreEnv) == "1" {
		if err := runFakeKVStore(os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runFakeKVStore is an in-memory stand-in for cmd/server implementing
// the contract: --listen/--debug-listen/--data-dir/--log-format flags,
// KVSTORE_ADMIN_TOKEN, GET /readyz, PUT and GET /api/v1/kv/{key} with a
// bearer token, 201 on create and 200 on update, SIGTERM to stop.
func runFakeKVStore(args []string) error {
	fs := flag.NewFlagSet("fake-kvstore", flag.ContinueOnError)
	listen := fs.String("listen", "", "")
	fs.String("debug-listen", "", "")
	dataDir := fs.String("data-dir", "", "")
	logFormat := fs.String("log-format", "", "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	token := os.Getenv("KVSTORE_ADMIN_TOKEN")
	if *listen == "" || *dataDir == "" || *logFormat != "json" || token == "" {
		return fmt.Errorf("fake kvstore: bad invocation %q (token set: %v)", args, token != "")
	}
	if st, err := os.Stat(*dataDir); err != nil || !st.IsDir() {
		return fmt.Errorf("fake kvstore: data dir: %v", err)
	}
	var mu sync.Mutex
	data := map[string][]byte{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("/api/v1/kv/{key}", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		key := r.PathValue("key")
		switch r.Method {
		case http.MethodPut:
			v, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			mu.Lock()
			_, existed := data[key]
			data[key] = v
			mu.Unlock()
			if existed {
				w.WriteHeader(http.StatusOK)
			} else {
				w.WriteHeader(http.StatusCreated)
			}
			io.WriteString(w, `{"key":"`+key+`"}`)
		case http.MethodGet:
			mu.Lock()
			v, ok := data[key]
			mu.Unlock()
			if !ok {
				http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
				return
			}
			w.Write(v)
		default:
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
	})
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	return serveUntilSignal(&http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, ln)
}

// testConfig skips the test in -short mode, as it starts child processes,
// and returns a config whose kvstore binary is this test binary, made a
// fake kvstore by fakeKVStoreEnv.
func testConfig(t *testing.T) *config {
	t.Helper()
	if testing.Short() {
		t.Skip("starts child processes")
	}
	t.Setenv(fakeKVStoreEnv, "1") // read by the kvstore child (the test binary)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return &config{
		commonFlags: commonFlags{clients: []int{1, 4}, judgeClients: 4,
			duration: 200 * time.Millisecond, maxOps: 500, opTimeout: 5 * time.Second,
			valueSize: 256, seed: 12345},
		localFlags: localFlags{kvstoreBin: self, etcdConns: 1},
		loadValues: 300, loadClients: 4, loadTimeout: 10 * time.Second,
	}
}

func TestRunTargetWithChildProcesses(t *testing.T) {
	cfg := testConfig(t)
	tests := []struct {
		target string
	}{
		{target: "kvstore"},
		{target: "bare-http"},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			tgt, ok := findTarget(tt.target)
			if !ok {
				t.Fatalf("unknown target %q", tt.target)
			}
			for _, c := range cfg.clients {
				row, err := runTarget(context.Background(), cfg, tgt, c, t.TempDir())
				if err != nil {
					t.Fatalf("runTarget(%d clients) = %v", c, err)
				}
				if row.Put.Ops == 0 || row.Get.Ops == 0 || row.Put.Errors != 0 || row.Get.Errors != 0 {
					t.Errorf("%d clients: put %+v get %+v", c, row.Put, row.Get)
				}
				if row.PeakRSS == 0 {
					t.Errorf("%d clients: no peak RSS", c)
				}
			}
		})
	}
}

func TestRunLoadWithFakeKVStore(t *testing.T) {
	cfg := testConfig(t)
	l, err := runLoad(context.Background(), cfg, t.TempDir())
	if err != nil {
		t.Fatalf("runLoad() = %v", err)
	}
	if !l.Complete() || l.Checked != 300 || l.PeakRSS == 0 {
		t.Errorf("load result %+v", l)
	}
}

func TestKVStoreRejectsWrongToken(t *testing.T) {
	cfg := testConfig(t)
	srv, err := startKVStore(context.Background(), cfg, t.TempDir(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.close()
	hc := srv.client.(*httpClient)
	bad := *hc
	bad.auth = "Bearer wrong"
	err = bad.Put(context.Background(), []byte("0123456789abcdef"), []byte("v"))
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("Put with wrong token = %v, want 401 error", err)
	}
}
