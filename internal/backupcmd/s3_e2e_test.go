package backupcmd_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"kvstore.dev/kvstore/internal/backup"
	"kvstore.dev/kvstore/internal/backupcmd"
	"kvstore.dev/kvstore/test/harness"
)

// TestS3 backs a real server up to a real S3 server, SeaweedFS's weed
// (make test-deps builds it; without it the test fails, it is not skipped).
func TestS3(t *testing.T) {
	s3 := harness.StartS3(t)
	s3.MakeBucket(t, "backups")
	getenv := env(backup.EnvAccessKey, s3.Admin.AccessKey, backup.EnvSecretKey, s3.Admin.SecretKey)
	uri := "s3://backups/e2e"
	loc, err := backup.ParseURI(uri)
	if err != nil {
		t.Fatal(err)
	}
	dest, err := backup.New(loc, backup.S3Options{Endpoint: s3.Endpoint, Getenv: getenv})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("backup and restore", func(t *testing.T) {
		backupRestore(t, dest, []string{"--destination", uri, "--s3-endpoint", s3.Endpoint, "--s3-bucket-lookup", "path"}, getenv)
	})

	t.Run("failures are loud", func(t *testing.T) {
		src := startServer(t, t.TempDir())
		tests := map[string]struct {
			endpoint string
			getenv   func(string) string
			want     string
		}{
			"forbidden":   {s3.Endpoint, env(backup.EnvAccessKey, s3.Admin.AccessKey, backup.EnvSecretKey, "wrong-secret-0123456789"), "HTTP 403"},
			"unreachable": {"http://127.0.0.1:" + strconv.Itoa(harness.FreePort(t)), getenv, "connection refused"},
		}
		for name, tc := range tests {
			t.Run(name, func(t *testing.T) {
				args := []string{"--server", src.URL, "--destination", "s3://backups/loud", "--s3-endpoint", tc.endpoint}
				cfg, err := backupcmd.Load(args, tc.getenv, io.Discard)
				if err != nil {
					t.Fatal(err)
				}
				var logs bytes.Buffer
				r, err := backupcmd.NewRunner(cfg, tc.getenv, slog.New(slog.NewTextHandler(&logs, nil)))
				if err != nil {
					t.Fatal(err)
				}
				if _, _, err := r.Once(context.Background()); err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("Once = %v; want an error with %q", err, tc.want)
				}
				m := r.Metrics
				if f, s, last := testutil.ToFloat64(m.Failures), testutil.ToFloat64(m.LastSuccess), testutil.ToFloat64(m.LastFailure); f != 1 || s != 0 || last == 0 {
					t.Errorf("failures %v, last success %v, last failure %v; want 1, 0 and a time", f, s, last)
				}
				if !strings.Contains(logs.String(), `level=ERROR msg="backup failed"`) || !strings.Contains(logs.String(), tc.want) {
					t.Errorf("log:\n%s", &logs)
				}
				// Run once, the failure is the command's error (exit status 2).
				if err := backupcmd.Run(context.Background(), args, tc.getenv, io.Discard, nil); err == nil {
					t.Error("Run succeeded")
				}
			})
		}
	})

	t.Run("metrics", func(t *testing.T) {
		newest, err := backup.Latest(context.Background(), dest)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		addrs := make(chan net.Addr, 1)
		done := make(chan error, 1)
		go func() {
			done <- backupcmd.Run(ctx, []string{"--destination", uri, "--s3-endpoint", s3.Endpoint, "--schedule", "@every 24h",
				"--metrics-listen", "127.0.0.1:0"}, getenv, io.Discard, func(a net.Addr) { addrs <- a })
		}()
		var addr net.Addr
		select {
		case addr = <-addrs:
		case err := <-done:
			t.Fatalf("Run returned %v", err)
		}
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run returned %v", err)
			}
		}()
		resp, err := http.Get("http://" + addr.String() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{
			fmt.Sprintf("kvstore_backup_last_success_timestamp_seconds %v", float64(newest.CompletedAt.Unix())),
			fmt.Sprintf("kvstore_backup_last_size_bytes %v", float64(newest.SizeBytes)),
			"kvstore_backup_failures_total 0",
		} {
			if !containsMetric(string(body), want) {
				t.Errorf("/metrics lacks %q", want)
			}
		}
	})
}

// containsMetric reports whether the exposition text has the sample
// "name value", comparing the values as numbers (1.7e+09 is 1700000000).
func containsMetric(text, sample string) bool {
	name, value, _ := strings.Cut(sample, " ")
	want, err := strconv.ParseFloat(value, 64)
	if err != nil {
		return false
	}
	for line := range strings.SplitSeq(text, "\n") {
		n, v, ok := strings.Cut(line, " ")
		if !ok || n != name {
			continue
		}
		if got, err := strconv.ParseFloat(v, 64); err == nil && got == want {
			return true
		}
	}
	return false
}
