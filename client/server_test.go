package client_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"kvstore.dev/kvstore/client"
	"kvstore.dev/kvstore/internal/certs"
	"kvstore.dev/kvstore/internal/config"
	"kvstore.dev/kvstore/test/harness"
	"kvstore.dev/kvstore/test/harness/inprocess"
	"kvstore.dev/kvstore/wire"
)

const testToken = "client-test-admin-token-0123456789"

// startServer runs a real server (bbolt in t.TempDir()) in the test's
// process with the admin token testToken, cfg adjusted by edit.
func startServer(t *testing.T, edit func(*config.Config)) *inprocess.Server {
	t.Helper()
	cfg := config.Default()
	cfg.Listen, cfg.DebugListen = "127.0.0.1:0", ""
	cfg.Console.Enabled = false
	cfg.Log.Level = "warn"
	cfg.Auth.Tokens = []config.Token{{Name: "admin", Token: testToken, Role: "admin"}}
	if edit != nil {
		edit(&cfg)
	}
	return inprocess.Start(t, cfg)
}

// protos records the protocol of every response a client got.
type protos struct {
	mu  sync.Mutex
	got []string
}

func (p *protos) hook() client.Option {
	return client.WithResponseHook(func(r *http.Response) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.got = append(p.got, r.Proto)
	})
}

func (p *protos) all() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Compact(slices.Clone(p.got))
}

func newClient(t *testing.T, url string, opts ...client.Option) *client.Client {
	t.Helper()
	c := client.New(url, append([]client.Option{client.WithToken(testToken)}, opts...)...)
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func TestKeyValue(t *testing.T) {
	srv := startServer(t, nil)
	ctx := context.Background()
	c := newClient(t, srv.URL)

	res, err := c.Put(ctx, "app/a", []byte("one"), client.TTL(time.Hour), client.ContentType("text/plain"))
	if err != nil || !res.Created || res.Revision == 0 || res.ExpiresAt == nil {
		t.Fatalf("Put = %+v, %v; want created with a revision and an expiry", res, err)
	}
	kv, err := c.Get(ctx, "app/a")
	if err != nil || string(kv.Value) != "one" || kv.ContentType != "text/plain" || kv.Revision != res.Revision || kv.Version != 1 || kv.ExpiresAt == nil {
		t.Fatalf("Get = %+v, %v", kv, err)
	}
	if _, err := c.Get(ctx, "app/a", client.Consistency(wire.ConsistencyStale)); err != nil {
		t.Fatalf("a stale Get: %v", err)
	}

	cases := map[string]struct {
		key  string
		opts []client.WriteOption
		want error
	}{
		"create only, existing":   {"app/a", []client.WriteOption{client.IfAbsent()}, client.ErrPreconditionFailed},
		"create only, new":        {"app/b", []client.WriteOption{client.IfAbsent()}, nil},
		"if match, stale":         {"app/a", []client.WriteOption{client.IfMatch(res.Revision + 100)}, client.ErrPreconditionFailed},
		"if match":                {"app/a", []client.WriteOption{client.IfMatch(res.Revision)}, nil},
		"if exists, missing":      {"app/none", []client.WriteOption{client.IfExists()}, client.ErrPreconditionFailed},
		"a bad ttl":               {"app/a", []client.WriteOption{client.TTL(-time.Second)}, client.ErrInvalidTTL},
		"conditions that exclude": {"app/a", []client.WriteOption{client.IfAbsent(), client.IfMatch(1)}, client.ErrInvalidArgument},
		"an unclean key":          {"app/../x", nil, client.ErrInvalidKey},
		"an empty key":            {"", nil, client.ErrInvalidKey},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := c.Put(ctx, tc.key, []byte("v"), tc.opts...)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Put: %v, want %v", err, tc.want)
			}
		})
	}

	if _, err := c.Get(ctx, "app/missing"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("Get of a missing key: %v, want ErrNotFound", err)
	}
	kv, _ = c.Get(ctx, "app/a")
	if _, err := c.Delete(ctx, "app/a", client.IfMatch(kv.Revision+100)); !errors.Is(err, client.ErrPreconditionFailed) {
		t.Fatalf("a conditional Delete: %v", err)
	}
	if rev, err := c.Delete(ctx, "app/a", client.IfMatch(kv.Revision)); err != nil || rev <= kv.Revision {
		t.Fatalf("Delete = %d, %v", rev, err)
	}
	if _, err := c.Delete(ctx, "app/a"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("Delete of a missing key: %v", err)
	}
}

func TestListAndDeletePrefix(t *testing.T) {
	srv := startServer(t, nil)
	ctx := context.Background()
	c := newClient(t, srv.URL)
	var want []string
	for _, k := range []string{"l/a", "l/b", "l/c", "l/d", "l/e", "other/x"} {
		if _, err := c.Put(ctx, k, []byte("v-"+k)); err != nil {
			t.Fatal(err)
		}
		if k[0] == 'l' {
			want = append(want, k)
		}
	}
	pages := 0
	for page, err := range c.ListPages(ctx, client.ListOptions{Prefix: "l/", PageSize: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(page.Items) > 2 || page.Revision == 0 {
			t.Fatalf("page %+v", page)
		}
	}
	if pages != 3 {
		t.Errorf("%d pages of 2 for 5 keys, want 3", pages)
	}
	var got []string
	for kv, err := range c.List(ctx, client.ListOptions{Prefix: "l/", PageSize: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		if string(kv.Value) != "v-"+kv.Key {
			t.Errorf("%s = %q", kv.Key, kv.Value)
		}
		got = append(got, kv.Key)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("List = %v, want %v", got, want)
	}
	for kv, err := range c.List(ctx, client.ListOptions{Prefix: "l/", KeysOnly: true}) {
		if err != nil || kv.Value != nil {
			t.Fatalf("keys only: %+v, %v", kv, err)
		}
		break // stopping early is fine
	}
	for _, err := range c.List(ctx, client.ListOptions{Prefix: "l/", PageSize: -1, Consistency: "bogus"}) {
		if !errors.Is(err, client.ErrInvalidArgument) {
			t.Fatalf("a bad consistency: %v", err)
		}
	}
	del, err := c.DeletePrefix(ctx, "l/")
	if err != nil || del.Deleted != 5 {
		t.Fatalf("DeletePrefix = %+v, %v", del, err)
	}
	if _, err := c.DeletePrefix(ctx, ""); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("DeletePrefix of everything: %v", err)
	}
}

func TestStatusClusterSnapshot(t *testing.T) {
	srv := startServer(t, nil)
	ctx := context.Background()
	c := newClient(t, srv.URL)
	if _, err := c.Put(ctx, "s/k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(ctx)
	if err != nil || st.Revision == 0 || st.Keys != 1 {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	cs, err := c.ClusterStatus(ctx)
	if err != nil || cs.Enabled || len(cs.Members) != 1 {
		t.Fatalf("ClusterStatus = %+v, %v", cs, err)
	}
	if err := c.RemoveMember(ctx, "n9"); !errors.Is(err, client.ErrNotClustered) {
		t.Fatalf("RemoveMember on a single node: %v", err)
	}
	var buf bytes.Buffer
	n, err := c.SnapshotTo(ctx, &buf)
	if err != nil || n == 0 || int64(buf.Len()) != n {
		t.Fatalf("SnapshotTo = %d, %v", n, err)
	}
	if _, err := client.New(srv.URL, client.WithToken("wrong")).Status(ctx); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("a wrong token: %v", err)
	}
}

// tlsServer runs a server with api.tls on and returns it and the CA's
// certificate (PEM).
func tlsServer(t *testing.T, edit func(*config.Config)) (*inprocess.Server, []byte) {
	t.Helper()
	ca, err := certs.NewCA("client test CA", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.IssueServer([]string{"localhost", "127.0.0.1"}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pair.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pair.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return startServer(t, func(c *config.Config) {
		c.API.TLS = config.APITLS{CertFile: certFile, KeyFile: keyFile}
		if edit != nil {
			edit(c)
		}
	}), ca.CertPEM
}

// TestProtocols: HTTP/2 by prior knowledge on plain HTTP and by ALPN over
// TLS, HTTP/1.1 with WithHTTP1; one connection serves many requests.
func TestProtocols(t *testing.T) {
	debug := func(c *config.Config) { c.Log.Level = "debug" } // logs each request's proto
	plain := startServer(t, debug)
	secure, caPEM := tlsServer(t, debug)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	tlsCfg := &tls.Config{RootCAs: pool}
	cases := map[string]struct {
		srv   *inprocess.Server
		opts  []client.Option
		proto string
	}{
		"h2c":            {plain, nil, "HTTP/2.0"},
		"plain HTTP/1.1": {plain, []client.Option{client.WithHTTP1()}, "HTTP/1.1"},
		"h2 by ALPN":     {secure, []client.Option{client.WithTLSConfig(tlsCfg)}, "HTTP/2.0"},
		"TLS HTTP/1.1":   {secure, []client.Option{client.WithTLSConfig(tlsCfg), client.WithHTTP1()}, "HTTP/1.1"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var p protos
			c := newClient(t, tc.srv.URL, append(tc.opts, p.hook())...)
			ctx := context.Background()
			var wg sync.WaitGroup
			errs := make(chan error, 16)
			for i := range 16 {
				wg.Go(func() {
					_, err := c.Put(ctx, "p/k", []byte{byte(i)})
					errs <- err
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if _, err := c.Get(ctx, "p/k"); err != nil {
				t.Fatal(err)
			}
			if got := p.all(); !slices.Equal(got, []string{tc.proto}) {
				t.Fatalf("responses over %v, want only %s", got, tc.proto)
			}
			// The server saw it too (its debug log of each request).
			if logs := tc.srv.Logs.String(); !strings.Contains(logs, `"proto":"`+tc.proto+`"`) {
				t.Fatalf("the server logged no request over %s", tc.proto)
			}
		})
	}
}

// TestFailover: with the first endpoint down, calls go to the second, and
// the next call starts there.
func TestFailover(t *testing.T) {
	srv := startServer(t, nil)
	down := "http://" + harness.FreeAddr(t) // nothing listens there
	ctx := context.Background()
	c := newClient(t, down+","+srv.URL, client.WithRetry(client.Retry{MaxAttempts: 2}))
	if got := c.Endpoints(); !slices.Equal(got, []string{down, srv.URL}) {
		t.Fatalf("Endpoints = %v", got)
	}
	for i := range 3 {
		if _, err := c.Put(ctx, "f/k", []byte{byte(i)}); err != nil {
			t.Fatalf("Put #%d with the first endpoint down: %v", i, err)
		}
	}
	// Had the calls after the first started at the dead endpoint, each
	// would have cost one of the two attempts; with one attempt left the
	// second endpoint still answers.
	one := newClient(t, down, client.WithRetry(client.Retry{MaxAttempts: 3, InitialBackoff: time.Millisecond}))
	_, err := one.Put(ctx, "f/k", []byte("x"))
	var ce *client.Error
	if err == nil || errors.As(err, &ce) || errors.Is(err, client.ErrOutcomeUnknown) {
		t.Fatalf("Put with every endpoint down: %v, want a transport error, the write not applied", err)
	}
}
