package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"kvstore.dev/kvstore/client"
	"kvstore.dev/kvstore/wire"
)

// fast retries quickly, so that the tests do not wait for backoffs.
var fast = client.WithRetry(client.Retry{MaxAttempts: 4, InitialBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond})

// answering is a stand-in server: its first failures requests answer with
// problem code, the rest with 201; it counts the requests.
func answering(t *testing.T, failures int, code string, status int) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := h2cServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if int(n.Add(1)) <= failures {
			w.Header().Set("Content-Type", wire.ContentTypeProblem)
			w.WriteHeader(status)
			_ = json.NewEncoder(w).Encode(wire.Problem{Status: status, Code: code, Title: http.StatusText(status)})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"key":"k","revision":3,"create_revision":3,"version":1,"expires_at":null}`))
	}))
	return srv, &n
}

// h2cServer is a stand-in server that, like kvstore's, speaks HTTP/1.1
// and h2c; it is closed when the test ends.
func h2cServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

func TestRetries(t *testing.T) {
	ctx := context.Background()
	put := func(c *client.Client) error { _, err := c.Put(ctx, "k", []byte("v")); return err }
	get := func(c *client.Client) error { _, err := c.Get(ctx, "k"); return err }
	cases := map[string]struct {
		call         func(*client.Client) error
		failures     int
		code         string
		status       int
		want         error // nil: success
		wantRequests int32
	}{
		"no_quorum is retried":                  {put, 2, wire.CodeNoQuorum, 503, nil, 3},
		"no_quorum until the attempts run out":  {put, 10, wire.CodeNoQuorum, 503, client.ErrNoQuorum, 4},
		"too_many_requests is retried":          {put, 1, wire.CodeTooManyRequests, 429, nil, 2},
		"a write is not retried on unavailable": {put, 1, wire.CodeUnavailable, 503, client.ErrUnavailable, 1},
		"a read is retried on unavailable":      {get, 1, wire.CodeUnavailable, 503, nil, 2},
		"outcome_unknown is not retried":        {put, 1, wire.CodeOutcomeUnknown, 504, client.ErrOutcomeUnknown, 1},
		"precondition_failed is not retried":    {put, 1, wire.CodePreconditionFailed, 412, client.ErrPreconditionFailed, 1},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			srv, n := answering(t, tc.failures, tc.code, tc.status)
			err := tc.call(client.New(srv.URL, fast))
			if (tc.want == nil) != (err == nil) || !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if got := n.Load(); got != tc.wantRequests {
				t.Fatalf("%d requests, want %d", got, tc.wantRequests)
			}
		})
	}
}

// TestRetryBoundedByTime: MaxElapsed ends the retries before MaxAttempts.
func TestRetryBoundedByTime(t *testing.T) {
	srv, n := answering(t, 1000, wire.CodeNoQuorum, 503)
	c := client.New(srv.URL, client.WithRetry(client.Retry{MaxAttempts: 1000, MaxElapsed: 50 * time.Millisecond, InitialBackoff: 20 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}))
	if _, err := c.Put(context.Background(), "k", nil); !errors.Is(err, client.ErrNoQuorum) {
		t.Fatalf("error %v, want ErrNoQuorum", err)
	}
	if got := n.Load(); got >= 1000 {
		t.Fatalf("%d requests: MaxElapsed did not bound the retries", got)
	}
}

// TestOutcomeUnknownWithoutAnswer: a write that was sent and got no
// answer may have been applied; it is not retried and matches
// ErrOutcomeUnknown. A read in the same case is retried.
func TestOutcomeUnknownWithoutAnswer(t *testing.T) {
	var n atomic.Int32
	srv := h2cServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		panic(http.ErrAbortHandler) // the stream ends without an answer
	}))
	c := client.New(srv.URL, fast)
	_, err := c.Put(context.Background(), "k", []byte("v"))
	if !errors.Is(err, client.ErrOutcomeUnknown) {
		t.Fatalf("error %v, want ErrOutcomeUnknown", err)
	}
	if got := n.Load(); got != 1 {
		t.Fatalf("the write was sent %d times, want once", got)
	}
	n.Store(0)
	if _, err := c.Get(context.Background(), "k"); err == nil || errors.Is(err, client.ErrOutcomeUnknown) {
		t.Fatalf("Get: %v", err)
	}
	if got := n.Load(); got != 4 {
		t.Fatalf("the read was sent %d times, want 4 (every attempt)", got)
	}

	ctx, cancel := context.WithCancel(context.Background())
	stop := make(chan struct{})
	hang := h2cServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cancel()
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(func() { close(stop) }) // runs first
	_, err = client.New(hang.URL, fast).Put(ctx, "k", []byte("v"))
	if !errors.Is(err, client.ErrOutcomeUnknown) || !errors.Is(err, context.Canceled) {
		t.Fatalf("a write cancelled in flight: %v, want ErrOutcomeUnknown and context.Canceled", err)
	}
}

// TestH2CToHTTP1: h2c to an endpoint that speaks HTTP/1.1 only fails with
// a message naming the cure; WithHTTP1 reaches it.
func TestH2CToHTTP1(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"version":"v"}`))
	}))
	t.Cleanup(srv.Close)
	_, err := client.New(srv.URL, fast).Status(context.Background())
	if err == nil || strings.Contains(err.Error(), "http2: ") != strings.Contains(err.Error(), "WithHTTP1") {
		t.Fatalf("h2c to an HTTP/1.1 server: %v, want an error, with a hint to WithHTTP1 when HTTP/2 failed", err)
	}
	if st, err := client.New(srv.URL, client.WithHTTP1()).Status(context.Background()); err != nil || st.Version != "v" {
		t.Fatalf("WithHTTP1: %+v, %v", st, err)
	}
}
