package cluster

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
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

// preambleLen is a kind byte and the token's SHA-256.
const preambleLen = 1 + sha256.Size

// peerMux accepts connections on the peer port, checks their preamble, and
// hands them to Raft's transport or the peer HTTP server.
type peerMux struct {
	ln        net.Listener
	digest    [sha256.Size]byte
	advertise net.Addr
	log       *slog.Logger
	raftConns chan net.Conn
	httpConns chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
	// raftOpen gates Raft's connections: until it is set they are closed
	// after the preamble, so this node neither votes nor acknowledges
	// entries. A node without Raft state opens it only once the cluster
	// has admitted it (see Node.bootstrapOrJoin).
	raftOpen atomic.Bool
}

func newPeerMux(ln net.Listener, token string, advertise net.Addr, log *slog.Logger) *peerMux {
	m := &peerMux{
		ln: ln, digest: sha256.Sum256([]byte(token)), advertise: advertise, log: log,
		raftConns: make(chan net.Conn), httpConns: make(chan net.Conn), closed: make(chan struct{}),
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
		go m.route(conn)
	}
}

// route reads the preamble with a deadline, so a silent or wrong peer cannot
// hold a goroutine, and refuses connections without the token.
func (m *peerMux) route(conn net.Conn) {
	var pre [preambleLen]byte
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(conn, pre[:]); err != nil {
		conn.Close()
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	if subtle.ConstantTimeCompare(pre[1:], m.digest[:]) != 1 {
		m.log.Warn("refused a peer connection with a wrong token", "remote", conn.RemoteAddr().String())
		conn.Close()
		return
	}
	ch := m.httpConns
	switch pre[0] {
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
	select {
	case ch <- conn:
	case <-m.closed:
		conn.Close()
	}
}

func (m *peerMux) close() error {
	m.closeOnce.Do(func() { close(m.closed) })
	return m.ln.Close()
}

// dial opens a connection of kind to a peer and sends the preamble.
//
// TCP keepalive probes every second after two idle seconds find a peer that
// vanished from the network (no FIN, no RST: a partition) in about five
// seconds, so a pooled connection to it fails instead of hanging.
func dial(addr string, kind byte, digest [sha256.Size]byte, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout, KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 2 * time.Second, Interval: time.Second, Count: 3}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	pre := append([]byte{kind}, digest[:]...)
	_ = conn.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := conn.Write(pre); err != nil {
		conn.Close()
		return nil, fmt.Errorf("peer preamble: %w", err)
	}
	_ = conn.SetWriteDeadline(time.Time{})
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
	return dial(string(addr), kindRaft, l.m.digest, timeout)
}

// httpListener is the net.Listener of the peer HTTP server.
type httpListener struct{ m *peerMux }

func (l httpListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.m.httpConns:
		return c, nil
	case <-l.m.closed:
		return nil, net.ErrClosed
	}
}

func (l httpListener) Close() error   { return nil } // the mux owns the socket
func (l httpListener) Addr() net.Addr { return l.m.advertise }

// advertiseAddr resolves PeerAdvertise lazily: in Kubernetes the pod's own
// DNS name may not resolve yet when the server starts.
type advertiseAddr string

func (a advertiseAddr) Network() string { return "tcp" }
func (a advertiseAddr) String() string  { return string(a) }
