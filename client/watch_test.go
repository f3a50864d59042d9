package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"kvstore.dev/kvstore/client"
	"kvstore.dev/kvstore/internal/config"
	"kvstore.dev/kvstore/wire"
)

// tcpProxy forwards connections to a backend; it can drop every open
// connection, and refuse new ones while it is closed.
type tcpProxy struct {
	ln      net.Listener
	backend string

	mu       sync.Mutex
	conns    []net.Conn
	closed   bool
	accepted int // connections forwarded
}

func newTCPProxy(t *testing.T, backend string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, backend: backend}
	t.Cleanup(func() { ln.Close(); p.drop() })
	go p.serve()
	return p
}

func (p *tcpProxy) URL() string { return "http://" + p.ln.Addr().String() }

func (p *tcpProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			continue
		}
		b, err := net.Dial("tcp", p.backend)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns = append(p.conns, c, b)
		p.accepted++
		p.mu.Unlock()
		go func() { io.Copy(b, c); b.Close() }()
		go func() { io.Copy(c, b); c.Close() }()
	}
}

// drop closes every open connection.
func (p *tcpProxy) drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// setClosed makes the proxy close new connections at once (closed) or
// forward them again.
func (p *tcpProxy) setClosed(closed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = closed
}

// TestWatchResume: a dropped stream is resumed after the last event
// delivered, so the changes made while no stream was open arrive once,
// in order.
func TestWatchResume(t *testing.T) {
	srv := startServer(t, nil)
	proxy := newTCPProxy(t, strings.TrimPrefix(srv.URL, "http://"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	direct := newClient(t, srv.URL)
	watcher := newClient(t, proxy.URL(), client.WithRetry(client.Retry{MaxAttempts: 1000, MaxElapsed: time.Minute, InitialBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond}))

	st, err := direct.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan wire.WatchEvent)
	errc := make(chan error, 1)
	go func() {
		// From a known revision, so that no event depends on when the
		// stream opens.
		for ev, err := range watcher.Watch(ctx, client.WatchOptions{Prefix: "w/", Since: st.Revision}) {
			if err != nil {
				errc <- err
				return
			}
			events <- ev
		}
	}()
	put := func(i int) {
		t.Helper()
		if _, err := direct.Put(ctx, fmt.Sprintf("w/%02d", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	next := func(i int) {
		t.Helper()
		select {
		case ev := <-events:
			if want := fmt.Sprintf("w/%02d", i); ev.Key != want || ev.Type != wire.EventPut {
				t.Fatalf("event %+v, want a put of %s", ev, want)
			}
		case err := <-errc:
			t.Fatalf("watch ended: %v", err)
		case <-ctx.Done():
			t.Fatalf("no event %d", i)
		}
	}
	for i := range 3 {
		put(i)
		next(i)
	}
	proxy.setClosed(true)
	proxy.drop()
	for i := 3; i < 8; i++ {
		put(i) // while no stream is open
	}
	proxy.setClosed(false)
	for i := 3; i < 9; i++ {
		if i == 8 {
			put(i) // a live one after the replay
		}
		next(i)
	}
	proxy.mu.Lock()
	defer proxy.mu.Unlock()
	if proxy.accepted < 2 {
		t.Fatalf("%d connections through the proxy: the stream was never dropped and resumed", proxy.accepted)
	}
}

// TestWatchCompacted: resuming from history the server no longer holds
// ends the watch with ErrCompacted.
func TestWatchCompacted(t *testing.T) {
	srv := startServer(t, func(c *config.Config) { c.Watch.HistoryEvents = 2 })
	ctx := context.Background()
	c := newClient(t, srv.URL)
	for i := range 5 {
		if _, err := c.Put(ctx, fmt.Sprintf("c/%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for _, err := range c.Watch(ctx, client.WatchOptions{Prefix: "c/", Since: 1}) {
		if n++; n > 1 {
			t.Fatal("the watch went on after an error")
		}
		var ce *client.Error
		if !errors.Is(err, client.ErrCompacted) || !errors.As(err, &ce) || ce.Problem.Status != 410 {
			t.Fatalf("Watch from revision 1: %v, want ErrCompacted (410)", err)
		}
	}
	// From a revision still held: the held changes, then live ones.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var got []string
	for ev, err := range c.Watch(ctx, client.WatchOptions{Prefix: "c/", Since: 4}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev.Key)
		if len(got) == 1 {
			break
		}
	}
	if len(got) != 1 || got[0] != "c/4" {
		t.Fatalf("replayed %v, want [c/4]", got)
	}
}

// TestWatchIdleTimeout: a stream that goes silent (no event, no
// heartbeat) is dropped after IdleTimeout and resumed after the last event.
func TestWatchIdleTimeout(t *testing.T) {
	resumedFrom := make(chan string, 4)
	var mu sync.Mutex
	n := 0
	srv := h2cServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		rev := 4 + n
		mu.Unlock()
		resumedFrom <- r.Header.Get("Last-Event-ID")
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "retry: 1000\n: watching\n\nid: %d\ndata: {\"type\":\"put\",\"key\":\"k\",\"revision\":%d}\n\n", rev, rev)
		w.(http.Flusher).Flush()
		<-r.Context().Done() // then silence
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := client.New(srv.URL, fast)
	var revs []uint64
	for ev, err := range c.Watch(ctx, client.WatchOptions{Since: 4, IdleTimeout: 50 * time.Millisecond}) {
		if err != nil {
			t.Fatal(err)
		}
		if revs = append(revs, ev.Revision); len(revs) == 2 {
			break
		}
	}
	if revs[0] != 5 || revs[1] != 6 {
		t.Fatalf("revisions %v, want [5 6]", revs)
	}
	if first, second := <-resumedFrom, <-resumedFrom; first != "4" || second != "5" {
		t.Fatalf("Last-Event-ID %q then %q, want 4 then 5", first, second)
	}
}
