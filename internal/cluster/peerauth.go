package cluster

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// The peer handshake. Every connection to the peer port, inside TLS when
// peer TLS is on, starts with a challenge-response over fresh nonces that
// proves to each side that the other holds the peer token, without sending
// anything an observer could replay:
//
//	client → server  handshakeVersion, nc                (nc: nonceLen random bytes)
//	server → client  ns, HMAC-SHA256(token, serverLabel || nc || ns)
//	client → server  kind, HMAC-SHA256(token, clientLabel || nc || ns || kind)
//
// (token: the server's signing token; see peerAuth for several tokens.)
//
// The server checks the client's answer in constant time before it reads
// anything else; the client checks the server's before it sends its own.
// The version byte lets a later handshake be told apart; a server refuses
// any other.
// The kind byte (kindRaft, kindHTTP) says what the connection carries; it
// is covered by the client's answer. Without TLS this stops replay and
// keeps the token off the wire, but not a man in the middle who tampers
// with an established connection: that takes peer TLS.
const (
	handshakeVersion = 1
	nonceLen         = 32
	serverLabel      = "kvstore peer handshake v1 server"
	clientLabel      = "kvstore peer handshake v1 client"
)

// errPeerAuth is a peer that did not prove it holds the peer token;
// errPeerTLS wraps a failed TLS handshake (a certificate refused).
var (
	errPeerAuth = errors.New("peer did not prove it holds the peer token")
	errPeerTLS  = errors.New("peer TLS handshake")
)

// peerAuth is how this node authenticates peer connections, both ways:
// the peer tokens, and peer TLS when it is on (tls non-nil). It is safe for
// concurrent use.
//
// A node may hold several peer tokens (auth.ParsePeerTokens), for a
// rotation: the first signs, every one verifies. As the server of a
// handshake the node proves its signing token and accepts an answer under
// any of its tokens; as the client it accepts the server's proof under any
// of its tokens and answers under the one that matched, the server's
// signing token. So two nodes talk when one holds the token the other
// signs with.
type peerAuth struct {
	token  []byte      // the signing token, when file is nil
	accept [][]byte    // the other tokens accepted, when file is nil
	file   *peerTokens // the tokens, re-read from their file; nil: token and accept
	tls    *peerTLS
}

// tokens are the node's peer tokens, the signing one first.
func (a *peerAuth) tokens() [][]byte {
	if a.file != nil {
		return a.file.current()
	}
	return append([][]byte{a.token}, a.accept...)
}

func proof(token []byte, label string, parts ...[]byte) []byte {
	mac := hmac.New(sha256.New, token)
	mac.Write([]byte(label))
	for _, p := range parts {
		mac.Write(p)
	}
	return mac.Sum(nil)
}

// serverHandshake authenticates an accepted connection within timeout and
// returns the connection to use (the TLS one when TLS is on) and its kind.
func (a *peerAuth) serverHandshake(conn net.Conn, timeout time.Duration) (net.Conn, byte, error) {
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if a.tls != nil {
		tc := tls.Server(conn, a.tls.serverConfig())
		if err := tc.HandshakeContext(context.Background()); err != nil {
			return nil, 0, fmt.Errorf("%w: %w", errPeerTLS, err)
		}
		conn = tc
	}
	msg := make([]byte, nonceLen+sha256.Size)
	hello := make([]byte, 1+nonceLen)
	if _, err := io.ReadFull(conn, hello); err != nil {
		return nil, 0, fmt.Errorf("read the client nonce: %w", err)
	}
	if hello[0] != handshakeVersion {
		return nil, 0, fmt.Errorf("%w: handshake version %d, want %d", errPeerAuth, hello[0], handshakeVersion)
	}
	nc := hello[1:]
	ns := msg[:nonceLen]
	_, _ = rand.Read(ns)
	tokens := a.tokens()
	copy(msg[nonceLen:], proof(tokens[0], serverLabel, nc, ns))
	if _, err := conn.Write(msg); err != nil {
		return nil, 0, fmt.Errorf("send the challenge: %w", err)
	}
	var answer [1 + sha256.Size]byte
	if _, err := io.ReadFull(conn, answer[:]); err != nil {
		return nil, 0, fmt.Errorf("read the answer: %w", err)
	}
	kind := answer[0]
	ok := false
	for _, t := range tokens { // every one, so the time says nothing of which matched
		ok = hmac.Equal(answer[1:], proof(t, clientLabel, nc, ns, []byte{kind})) || ok
	}
	if !ok {
		return nil, 0, errPeerAuth
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, kind, nil
}

// clientHandshake authenticates a dialed connection of kind within timeout
// and returns the connection to use.
func (a *peerAuth) clientHandshake(conn net.Conn, kind byte, timeout time.Duration) (net.Conn, error) {
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if a.tls != nil {
		tc := tls.Client(conn, a.tls.clientConfig())
		if err := tc.HandshakeContext(context.Background()); err != nil {
			return nil, fmt.Errorf("%w: %w", errPeerTLS, err)
		}
		conn = tc
	}
	hello := make([]byte, 1+nonceLen)
	hello[0] = handshakeVersion
	nc := hello[1:]
	_, _ = rand.Read(nc)
	if _, err := conn.Write(hello); err != nil {
		return nil, fmt.Errorf("send the nonce: %w", err)
	}
	msg := make([]byte, nonceLen+sha256.Size)
	if _, err := io.ReadFull(conn, msg); err != nil {
		return nil, fmt.Errorf("read the challenge: %w", err)
	}
	ns := msg[:nonceLen]
	var token []byte // the server's signing token, if this node holds it
	for _, t := range a.tokens() {
		if hmac.Equal(msg[nonceLen:], proof(t, serverLabel, nc, ns)) && token == nil {
			token = t
		}
	}
	if token == nil {
		return nil, errPeerAuth
	}
	answer := append([]byte{kind}, proof(token, clientLabel, nc, ns, []byte{kind})...)
	if _, err := conn.Write(answer); err != nil {
		return nil, fmt.Errorf("send the answer: %w", err)
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, nil
}
