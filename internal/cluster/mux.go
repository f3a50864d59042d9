package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// Connection kinds on the peer port.
const (
	kindRaft = 'R'
	kindHTTP = 'H'
)

// muxOptions bound the connections that have not yet authenticated. They
// are a struct so that tests can shrink them and pass a clock.
type muxOptions struct {
	// maxUnauthenticated is how many accepted connections may be in their
	// handshake (peerauth.go) at once; the listener closes any more at
	// once. Peers that got through keep their connections.
	maxUnauthenticated int
	// handshakeTimeout is how long a connection may take to complete its
	// handshake (TLS, when on, and the challenge-response).
	handshakeTimeout time.Duration
	// logEvery is the shortest interval between two warnings of one kind
	// (a wrong token, a failed TLS handshake, over the limit); the ones in
	// between are counted.
	logEvery time.Duration
	now      func() time.Time
}

func defaultMuxOptions() muxOptions {
	return muxOptions{maxUnauthenticated: 64, handshakeTimeout: 5 * time.Second, logEvery: 10 * time.Second, now: time.Now}
}

// peerMux accepts connections on the peer port, authenticates them (the
// handshake of peerauth.go), and hands them to Raft's transport or the
// peer HTTP server.
type peerMux struct {
	ln        net.Listener
	auth      *peerAuth
	advertise net.Addr
	log       *slog.Logger
	opts      muxOptions
	// unauth holds one token per connection still in its handshake.
	unauth    chan struct{}
	badToken  *logLimiter
	badTLS    *logLimiter
	overLimit *logLimiter
	raftConns chan net.Conn
	httpConns chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
	// httpStopped is closed when the peer HTTP server stops accepting
	// (its Shutdown closes httpListener), before the mux itself closes.
	httpStopped  chan struct{}
	httpStopOnce sync.Once
	// raftOpen gates Raft's connections: until it is set they are closed
	// after the handshake, so this node neither votes nor acknowledges
	// entries. A node without Raft state opens it only once the cluster
	// has admitted it (see Node.bootstrapOrJoin).
	raftOpen atomic.Bool
}

func newPeerMux(ln net.Listener, auth *peerAuth, advertise net.Addr, log *slog.Logger) *peerMux {
	return startPeerMux(ln, auth, advertise, log, defaultMuxOptions())
}

func startPeerMux(ln net.Listener, auth *peerAuth, advertise net.Addr, log *slog.Logger, opts muxOptions) *peerMux {
	m := &peerMux{
		ln: ln, auth: auth, advertise: advertise, log: log, opts: opts,
		unauth:    make(chan struct{}, opts.maxUnauthenticated),
		badToken:  &logLimiter{every: opts.logEvery, now: opts.now},
		badTLS:    &logLimiter{every: opts.logEvery, now: opts.now},
		overLimit: &logLimiter{every: opts.logEvery, now: opts.now},
		raftConns: make(chan net.Conn), httpConns: make(chan net.Conn), closed: make(chan struct{}),
		httpStopped: make(chan struct{}),
	}
	go m.serve()
	return m
}

func (m *peerMux) serve() {
	for {
		conn, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.closed:
			default:
				m.log.Error("peer listener stopped", "err", err)
			}
			return
		}
		// At most opts.maxUnauthenticated connections are in their
		// handshake; past that, anyone who can reach the port could hold
		// a goroutine and a socket each for the handshake timeout.
		select {
		case m.unauth <- struct{}{}:
			go m.route(conn)
		default:
			conn.Close()
			if ok, suppressed := m.overLimit.allow(); ok {
				m.log.Warn("refused a peer connection: too many connections have not authenticated yet",
					"remote", conn.RemoteAddr().String(), "limit", m.opts.maxUnauthenticated, "suppressed", suppressed)
			}
		}
	}
}

// route runs the handshake with a deadline, so a silent or wrong peer
// cannot hold a goroutine, and refuses connections that fail it.
func (m *peerMux) route(raw net.Conn) {
	conn, kind, ok := m.handshake(raw)
	if !ok {
		raw.Close()
		return
	}
	ch := m.httpConns
	switch kind {
	case kindRaft:
		if !m.raftOpen.Load() {
			conn.Close()
			return
		}
		ch = m.raftConns
	case kindHTTP:
	default:
		conn.Close()
		return
	}
	stopped := m.httpStopped
	if kind == kindRaft {
		stopped = nil
	}
	select {
	case ch <- conn:
	case <-m.closed:
		conn.Close()
	case <-stopped:
		conn.Close()
	}
}

// handshake authenticates a connection (peerAuth.serverHandshake), logs a
// refusal (rate-limited), then gives back its place among the
// unauthenticated connections.
func (m *peerMux) handshake(raw net.Conn) (conn net.Conn, kind byte, ok bool) {
	defer func() { <-m.unauth }()
	conn, kind, err := m.auth.serverHandshake(raw, m.opts.handshakeTimeout)
	switch {
	case err == nil:
		return conn, kind, true
	case errors.Is(err, errPeerAuth):
		if ok, suppressed := m.badToken.allow(); ok {
			m.log.Warn("refused a peer connection with a wrong token", "remote", raw.RemoteAddr().String(), "suppressed", suppressed)
		}
	case errors.Is(err, errPeerTLS):
		if ok, suppressed := m.badTLS.allow(); ok {
			m.log.Warn("refused a peer connection: TLS handshake failed", "remote", raw.RemoteAddr().String(), "err", err, "suppressed", suppressed)
		}
	}
	return nil, 0, false
}

// logLimiter lets one log line of a kind through per interval and counts
// the ones it holds back. It is safe for concurrent use.
type logLimiter struct {
	every time.Duration
	now   func() time.Time

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// allow reports whether to log now and, if so, how many lines were held
// back since the last one.
func (l *logLimiter) allow() (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.now()
	if !l.last.IsZero() && t.Sub(l.last) < l.every {
		l.suppressed++
		return false, 0
	}
	n := l.suppressed
	l.last, l.suppressed = t, 0
	return true, n
}

func (m *peerMux) close() error {
	if m == nil { // a single node's: there is no peer port
		return nil
	}
	m.closeOnce.Do(func() { close(m.closed) })
	return m.ln.Close()
}

// dial opens a connection of kind to a peer and runs the handshake
// (peerauth.go), both within timeout.
//
// TCP keepalive probes every second after two idle seconds find a peer that
// vanished from the network (no FIN, no RST: a partition) in about five
// seconds, so a pooled connection to it fails instead of hanging.
func dial(addr string, kind byte, auth *peerAuth, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout, KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 2 * time.Second, Interval: time.Second, Count: 3}}
	raw, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	conn, err := auth.clientHandshake(raw, kind, timeout)
	if err != nil {
		raw.Close()
		return nil, fmt.Errorf("peer handshake with %s: %w", addr, err)
	}
	return conn, nil
}

// raftLayer is the raft.StreamLayer of the peer port.
type raftLayer struct{ m *peerMux }

func (l raftLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.m.raftConns:
		return c, nil
	case <-l.m.closed:
		return nil, errors.New("peer listener closed")
	}
}

func (l raftLayer) Close() error   { return l.m.close() }
func (l raftLayer) Addr() net.Addr { return l.m.advertise }

func (l raftLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return dial(string(addr), kindRaft, l.m.auth, timeout)
}

// httpListener is the net.Listener of the peer HTTP server.
type httpListener struct{ m *peerMux }

func (l httpListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.m.httpConns:
		return c, nil
	case <-l.m.closed:
		return nil, net.ErrClosed
	case <-l.m.httpStopped:
		return nil, net.ErrClosed
	}
}

// Close stops Accept (so that http.Server.Shutdown returns); the mux owns
// the socket and goes on routing Raft's connections.
func (l httpListener) Close() error {
	l.m.httpStopOnce.Do(func() { close(l.m.httpStopped) })
	return nil
}
func (l httpListener) Addr() net.Addr { return l.m.advertise }

// advertiseAddr resolves PeerAdvertise lazily: in Kubernetes the pod's own
// DNS name may not resolve yet when the server starts.
type advertiseAddr string

func (a advertiseAddr) Network() string { return "tcp" }
func (a advertiseAddr) String() string  { return string(a) }
