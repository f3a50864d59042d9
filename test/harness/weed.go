package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// WeedEnv names a prebuilt SeaweedFS weed binary (the Makefile's test
// target sets it); unset, the tests use bin/weed.
const WeedEnv = "KVSTORE_WEED_BIN"

// S3Identity is an access key of an S3Server, with SeaweedFS's actions
// ("Admin", "Read", "Write", "List", or "Read:bucket" for one bucket).
type S3Identity struct {
	Name, AccessKey, SecretKey string
	Actions                    []string
}

// S3Server is a real S3-compatible server for a test: SeaweedFS's weed
// (Apache-2.0) with its master, volume server, filer and S3 gateway in one
// process, on loopback ports, with its data in a t.TempDir(). Admin is an
// identity allowed everything; the test's own identities come after it.
type S3Server struct {
	Endpoint string // http://127.0.0.1:port
	Region   string
	Admin    S3Identity
	proc     *exec.Cmd
}

// WeedBin returns the weed binary: $KVSTORE_WEED_BIN, else bin/weed. A
// missing one fails the test (it is never skipped silently): `make
// test-deps` builds it. In -short mode the test is skipped, as Binary does.
func WeedBin(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping a test with a real S3 server (SeaweedFS weed) in -short mode")
	}
	bin := os.Getenv(WeedEnv)
	if bin == "" {
		bin = filepath.Join(Root(), "bin", "weed")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("no SeaweedFS weed at %s (the S3 server of the backup tests): `make test-deps` builds it (hack/install-weed.sh), or set %s: %v", bin, WeedEnv, err)
	}
	return bin
}

// StartS3 starts weed with the S3 gateway and the given identities
// besides Admin, waits until the gateway answers Admin's requests, and
// stops it when the test ends.
func StartS3(t testing.TB, identities ...S3Identity) *S3Server {
	t.Helper()
	return StartS3On(t, "127.0.0.1", identities...)
}

// StartS3On is StartS3 with every port of weed bound to ip instead of
// loopback: an address of the host's that the project's own containers or
// network namespaces reach (the Kubernetes suite's pods reach the host at
// its end of the node's veth).
func StartS3On(t testing.TB, ip string, identities ...S3Identity) *S3Server {
	t.Helper()
	bin := WeedBin(t)
	dir := t.TempDir()
	admin := S3Identity{Name: "admin", AccessKey: "kvtestadmin" + strconv.Itoa(os.Getpid()), SecretKey: "kvtest-admin-secret-" + Token(),
		Actions: []string{"Admin", "Read", "List", "Tagging", "Write"}}
	type cred struct {
		AccessKey string `json:"accessKey"`
		SecretKey string `json:"secretKey"`
	}
	type ident struct {
		Name        string   `json:"name"`
		Credentials []cred   `json:"credentials"`
		Actions     []string `json:"actions"`
	}
	var cfg struct {
		Identities []ident `json:"identities"`
	}
	for _, id := range append([]S3Identity{admin}, identities...) {
		cfg.Identities = append(cfg.Identities, ident{Name: id.Name, Credentials: []cred{{id.AccessKey, id.SecretKey}}, Actions: id.Actions})
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "s3.json")
	if err := os.WriteFile(cfgFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	port := func() string { return strconv.Itoa(FreePort(t)) }
	s3Port := port()
	args := []string{"server",
		"-dir", filepath.Join(dir, "data"), "-ip", ip, "-ip.bind", ip,
		"-master.port", port(), "-master.port.grpc", port(), "-master.telemetry=false", "-master.volumeSizeLimitMB", "64",
		"-volume.port", port(), "-volume.port.grpc", port(), "-volume.max", "16",
		"-filer", "-filer.port", port(), "-filer.port.grpc", port(),
		"-s3", "-s3.port", s3Port, "-s3.port.grpc", port(), "-s3.port.iceberg", "0", "-s3.port.lance", "0",
		"-s3.config", cfgFile,
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(ArtifactsDir(t), fileName(t.Name())+"-weed.log")
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("start %s: %v", bin, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); logFile.Close() }()
	s := &S3Server{Endpoint: "http://" + net.JoinHostPort(ip, s3Port), Region: "us-east-1", Admin: admin, proc: cmd}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			t.Logf("weed log (%s):\n%s", logPath, tail(string(out)))
		}
	})
	c := s.Client(t, admin)
	_, err = Poll(3*time.Minute, func() error {
		select {
		case err := <-done:
			done <- err
			return fmt.Errorf("weed exited: %v", err)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := c.ListBuckets(ctx)
		return err
	})
	if err != nil {
		out, _ := os.ReadFile(logPath)
		t.Fatalf("SeaweedFS S3 gateway at %s not ready: %v\n%s", s.Endpoint, err, tail(string(out)))
	}
	return s
}

// Client returns a minio-go client of the server with id's keys.
func (s *S3Server) Client(t testing.TB, id S3Identity) *minio.Client {
	t.Helper()
	c, err := minio.New(s.Endpoint[len("http://"):], &minio.Options{
		Creds: credentials.NewStaticV4(id.AccessKey, id.SecretKey, ""), Region: s.Region,
		BucketLookup: minio.BucketLookupPath, MaxRetries: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// MakeBucket creates a bucket as Admin, polling while the new server
// still settles (its first volumes are being allocated).
func (s *S3Server) MakeBucket(t testing.TB, name string) {
	t.Helper()
	c := s.Client(t, s.Admin)
	Eventually(t, "bucket "+name, time.Minute, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if ok, err := c.BucketExists(ctx, name); err == nil && ok {
			return nil
		}
		return c.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: s.Region})
	})
}
