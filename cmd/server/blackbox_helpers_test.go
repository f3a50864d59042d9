// Helpers for the black-box tests of the kvstore binary: they build this
// package with the go command, run the binary as a child process on loopback
// ports, and talk to it over HTTP exactly as a client would. The tests that use
// them live in crash_test.go.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"kvstore.dev/kvstore/internal/testlog"
)

const (
	// readyTimeout bounds how long a started server may take to answer
	// GET /readyz with 200.
	readyTimeout = 10 * time.Second
	// exitTimeout bounds how long a server may take to exit after a signal.
	exitTimeout = 10 * time.Second
	// requestTimeout bounds every HTTP request the tests make.
	requestTimeout = 10 * time.Second
	// outputTail is how much of a server's output failure messages quote.
	outputTail = 8 << 10
)

// buildServer compiles this package with "go build" into a fresh temporary
// directory and returns the binary's path. It skips the test in -short mode,
// because building and running the binary takes seconds.
func buildServer(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping black-box test of the server binary in -short mode")
	}
	// "go test" puts $GOROOT/bin first in the PATH of the test binary.
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("cannot find the go command to build the server: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "kvstore")
	cmd := exec.Command(goCmd, "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build -o %s .: %v\n%s", bin, err, out)
	}
	return bin
}

// newToken returns a random admin token.
func newToken(t *testing.T) string {
	t.Helper()
	return "kvt-" + rand.Text()
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatalf("closing probe listener: %v", err)
	}
	return addr
}

// serverProc is one running kvstore child process. Its methods are called
// from the test goroutine only; done may be watched from any goroutine.
type serverProc struct {
	name        string // "server #N" in messages
	baseURL     string // "http://127.0.0.1:PORT"
	token       string
	cmd         *exec.Cmd
	output      *testlog.Buffer // stdout and stderr, interleaved
	done        chan struct{}   // closed once the process has exited and been reaped
	waitErr     error           // cmd.Wait's result; read only after done is closed
	outputShown bool            // a failure message already quoted the output
}

var serverSeq struct {
	sync.Mutex
	n int
}

// startServer runs the binary on a free loopback port with dataDir and the
// admin token, and returns once GET /readyz answers 200. The process is
// killed, if still running, when the test ends. Should the probed port be
// taken by someone else before the server binds it, it tries another.
func startServer(t *testing.T, bin, dataDir, token string) *serverProc {
	t.Helper()
	for attempt := 1; ; attempt++ {
		p := launchServer(t, bin, dataDir, token)
		start := time.Now()
		err := p.waitReady(readyTimeout)
		if err == nil {
			t.Logf("%s ready on %s after %v", p.name, p.baseURL, time.Since(start).Round(time.Millisecond))
			return p
		}
		if attempt < 3 && p.exited() && strings.Contains(p.output.String(), "address already in use") {
			t.Logf("%s lost the race for its port; retrying", p.name)
			continue
		}
		p.kill(t)
		p.outputShown = true
		t.Fatalf("%s: %v\n%s output (tail):\n%s", p.name, err, p.name, p.outputTail())
	}
}

func launchServer(t *testing.T, bin, dataDir, token string) *serverProc {
	t.Helper()
	return launchServerWith(t, bin, dataDir, token, freeAddr(t), nil, nil)
}

// launchServerWith starts the binary on addr with more arguments and
// environment variables.
func launchServerWith(t *testing.T, bin, dataDir, token, addr string, args, env []string) *serverProc {
	t.Helper()
	serverSeq.Lock()
	serverSeq.n++
	n := serverSeq.n
	serverSeq.Unlock()

	p := &serverProc{
		name:    fmt.Sprintf("server #%d", n),
		baseURL: "http://" + addr,
		token:   token,
		output:  new(testlog.Buffer),
		done:    make(chan struct{}),
	}
	p.cmd = exec.Command(bin, append([]string{
		"--listen", addr,
		"--debug-listen", "127.0.0.1:0",
		"--data-dir", dataDir,
		"--log-format", "json",
	}, args...)...)
	p.cmd.Env = append(append(serverEnv(), "KVSTORE_ADMIN_TOKEN="+token), env...)
	p.cmd.Stdout = p.output
	p.cmd.Stderr = p.output
	// Don't hang in Wait if the server leaves a child holding the pipes.
	p.cmd.WaitDelay = 2 * time.Second
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill(t)
		if strings.Contains(p.output.String(), token) {
			t.Errorf("%s wrote the admin token to its logs", p.name)
		}
		if t.Failed() && !p.outputShown {
			t.Logf("%s output (tail):\n%s", p.name, p.outputTail())
		}
	})
	return p
}

// serverEnv is the test's environment without KVSTORE_* variables, so that a
// developer's shell settings cannot change the server under test.
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KVSTORE_") {
			env = append(env, kv)
		}
	}
	return env
}

// waitReady polls GET /readyz until it answers 200, the process exits, or
// timeout passes.
func (p *serverProc) waitReady(timeout time.Duration) error {
	hc := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	deadline := time.Now().Add(timeout)
	last := "no answer yet"
	for {
		if p.exited() {
			return fmt.Errorf("exited before becoming ready (%v); last /readyz: %s", p.waitErr, last)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v; last /readyz: %s", timeout, last)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.baseURL+"/readyz", nil)
		if err != nil {
			cancel()
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			last = err.Error()
		} else {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				cancel()
				return nil
			}
			last = fmt.Sprintf("%s %q", resp.Status, body)
		}
		cancel()
		// Pacing of the poll loop, not a wait for a condition.
		select {
		case <-p.done:
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// exited reports whether the process has exited.
func (p *serverProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL, unless the process has exited, and waits for it to be
// reaped.
func (p *serverProc) kill(t *testing.T) {
	t.Helper()
	if p.exited() {
		return
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("SIGKILL %s: %v", p.name, err)
	}
	if _, ok := p.waitExit(exitTimeout); !ok {
		t.Errorf("%s still running %v after SIGKILL", p.name, exitTimeout)
	}
}

// terminate sends SIGTERM and fails the test unless the process exits with
// status 0 within exitTimeout.
func (p *serverProc) terminate(t *testing.T) {
	t.Helper()
	if p.exited() {
		t.Errorf("%s exited before SIGTERM: %v", p.name, p.waitErr)
		return
	}
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Errorf("SIGTERM %s: %v", p.name, err)
		return
	}
	state, ok := p.waitExit(exitTimeout)
	if !ok {
		t.Errorf("%s still running %v after SIGTERM", p.name, exitTimeout)
		p.kill(t)
		return
	}
	if state == nil || state.ExitCode() != 0 {
		t.Errorf("%s after SIGTERM: %v (%v), want exit status 0", p.name, state, p.waitErr)
		return
	}
	t.Logf("%s exited 0 %v after SIGTERM", p.name, time.Since(start).Round(time.Millisecond))
}

// waitExit waits up to timeout for the process to exit.
func (p *serverProc) waitExit(timeout time.Duration) (*os.ProcessState, bool) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-p.done:
		return p.cmd.ProcessState, true
	case <-timer.C:
		return nil, false
	}
}

func (p *serverProc) outputTail() string {
	s := p.output.String()
	if len(s) <= outputTail {
		return s
	}
	s = s[len(s)-outputTail:]
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return "[...]\n" + s
}

// kvClient speaks the key-value HTTP API of one server process. It is safe
// for concurrent use.
type kvClient struct {
	baseURL string
	token   string
	hc      *http.Client
}

func newKVClient(t *testing.T, p *serverProc) *kvClient {
	t.Helper()
	tr := &http.Transport{
		Proxy:               nil, // traffic goes to 127.0.0.1 only
		MaxIdleConnsPerHost: 16,
		DisableCompression:  true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &kvClient{baseURL: p.baseURL, token: p.token, hc: &http.Client{Transport: tr}}
}

// closeIdle closes the client's idle connections.
func (c *kvClient) closeIdle() {
	c.hc.CloseIdleConnections()
}

// keyURL is the URL of key, each path segment escaped.
func (c *kvClient) keyURL(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return c.baseURL + "/api/v1/kv/" + strings.Join(segs, "/")
}

// putResult is what a PUT answered. An error from put instead means the
// outcome of the write is unknown.
type putResult struct {
	status    int
	etag      string
	meta      putMeta
	body      []byte
	decodeErr error // set if a 200/201 body did not decode as putMeta
}

// putMeta is the JSON body of a successful PUT.
type putMeta struct {
	Key            string          `json:"key"`
	Revision       flexInt         `json:"revision"`
	CreateRevision flexInt         `json:"create_revision"`
	Version        flexInt         `json:"version"`
	ExpiresAt      json.RawMessage `json:"expires_at"`
}

// flexInt decodes a JSON number or a decimal string (as some APIs encode
// 64-bit integers).
type flexInt int64

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		return nil
	}
	if uq, err := strconv.Unquote(s); err == nil {
		s = uq
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("not an integer: %s", b)
	}
	*f = flexInt(n)
	return nil
}

// put writes value under key. A non-nil error means the request failed
// before a status line arrived, so the write may or may not have happened.
func (c *kvClient) put(key string, value []byte) (putResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.keyURL(key), bytes.NewReader(value))
	if err != nil {
		return putResult{}, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.hc.Do(req)
	if err != nil {
		return putResult{}, err
	}
	defer resp.Body.Close()
	res := putResult{status: resp.StatusCode, etag: resp.Header.Get("ETag")}
	res.body, err = io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		// The status line arrived, so the server answered; only the body is lost.
		res.decodeErr = fmt.Errorf("reading body: %w", err)
		return res, nil
	}
	if res.status == http.StatusOK || res.status == http.StatusCreated {
		if err := json.Unmarshal(res.body, &res.meta); err != nil {
			res.decodeErr = fmt.Errorf("decoding %q: %w", res.body, err)
		}
	}
	return res, nil
}

// getResult is what a GET answered.
type getResult struct {
	status      int
	contentType string
	body        []byte
}

// get reads key.
func (c *kvClient) get(key string) (getResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.keyURL(key), nil)
	if err != nil {
		return getResult{}, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.hc.Do(req)
	if err != nil {
		return getResult{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return getResult{}, fmt.Errorf("GET %s: reading body: %w", key, err)
	}
	return getResult{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), body: body}, nil
}

// checkPutContract returns how an acknowledged PUT of key broke the API
// contract, if it did. existed says whether the key held a value before the
// write; prevRev is the last revision acknowledged for the key (0 if none).
func checkPutContract(key string, existed bool, prevRev int64, res putResult) []string {
	var problems []string
	wantStatus := http.StatusCreated
	if existed {
		wantStatus = http.StatusOK
	}
	if res.status != wantStatus {
		problems = append(problems, fmt.Sprintf("PUT %s (key existed: %t): status %d, want %d", key, existed, res.status, wantStatus))
	}
	if res.decodeErr != nil {
		return append(problems, fmt.Sprintf("PUT %s: body: %v", key, res.decodeErr))
	}
	if res.meta.Key != key {
		problems = append(problems, fmt.Sprintf("PUT %s: body key %q, want %q", key, res.meta.Key, key))
	}
	rev := int64(res.meta.Revision)
	if want := strconv.Quote(strconv.FormatInt(rev, 10)); res.etag != want {
		problems = append(problems, fmt.Sprintf("PUT %s: ETag %s, want %s (the revision in the body)", key, res.etag, want))
	}
	if rev <= prevRev {
		problems = append(problems, fmt.Sprintf("PUT %s: revision %d, want more than %d (the previous acknowledged revision of the key)", key, rev, prevRev))
	}
	return problems
}

// checkNotFound returns how a 404 answer broke the API contract, if it did.
func checkNotFound(key string, res getResult) []string {
	var problems []string
	if !strings.HasPrefix(res.contentType, "application/problem+json") {
		problems = append(problems, fmt.Sprintf("GET %s: 404 with Content-Type %q, want application/problem+json", key, res.contentType))
	}
	var body struct {
		Code string `json:"code"`
	}
	if err := json.Unmarshal(res.body, &body); err != nil || body.Code != "not_found" {
		problems = append(problems, fmt.Sprintf("GET %s: 404 body %q, want a problem with code \"not_found\"", key, res.body))
	}
	return problems
}

// reportProblems fails the test with at most max of problems, saying how many
// there were.
func reportProblems(t *testing.T, what string, problems []string) {
	t.Helper()
	if len(problems) == 0 {
		return
	}
	const max = 20
	shown := problems
	if len(shown) > max {
		shown = shown[:max]
	}
	more := ""
	if len(problems) > max {
		more = fmt.Sprintf("\n  ... and %d more", len(problems)-max)
	}
	t.Errorf("%s: %d problems:\n  %s%s", what, len(problems), strings.Join(shown, "\n  "), more)
}
