package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"kvstore.dev/kvstore/internal/errcode"
	"kvstore.dev/kvstore/internal/store"
	"kvstore.dev/kvstore/wire"
)

// errNotLeader is the peer-only not_leader of errcode's table: the request
// went to a node that is not (or no longer) the leader, before it changed
// anything; it is retried at the leader.
var errNotLeader = errcode.ErrNotLeader

// errUnreachable is internal: no answer came from a peer, and nothing was
// changed there (the connection failed before the request was sent, or the
// request was a read). It is retried.
var errUnreachable = errors.New("peer unreachable")

// The routing policy's retries: at most routeAttempts, after a pause that
// doubles from routeBackoff up to routeMaxBackoff, and within the apply
// timeout.
const (
	routeAttempts   = 32
	routeBackoff    = 10 * time.Millisecond
	routeMaxBackoff = 200 * time.Millisecond
)

// peerClient is this node's one client of the other nodes' peer API
// (peerapi.go): forwarded writes (batch.go), read-index requests,
// membership changes, joins and status go through it, with one routing
// policy (viaLeader) and one error policy (call). It is safe for concurrent
// use and lives as long as its Node: stop ends its forwarders.
type peerClient struct {
	client *http.Client
	// transport is client's; the Node drops its idle connections when the
	// leader changes (they may lead to a node that vanished).
	transport *http.Transport
	self      string        // this node's peer address
	leader    func() string // the leader's peer address as Raft knows it, "" during an election
	timeout   time.Duration // the apply timeout: how long a routed call looks for a leader
	stop      <-chan struct{}
	// after is time.After; tests pass their own to count and end retries.
	after     func(time.Duration) <-chan time.Time
	forwardCh chan *forwardReq // proposals to forward, batched (batch.go)
}

// newPeerClient returns a client whose connections authenticate with auth
// (dial), and starts its forwarders.
func newPeerClient(auth *peerAuth, self string, leader func() string, timeout time.Duration, stop <-chan struct{}) *peerClient {
	t := &http.Transport{
		DialContext: func(_ context.Context, _, addr string) (net.Conn, error) {
			conn, err := dial(addr, kindHTTP, auth, 2*time.Second)
			if err != nil {
				return nil, fmt.Errorf("%w: %w", errUnreachable, err)
			}
			return conn, nil
		},
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     30 * time.Second,
		// A forwarded write is answered once applied: within the timeout.
		ResponseHeaderTimeout: timeout + 2*time.Second,
	}
	c := &peerClient{client: &http.Client{Transport: t}, transport: t, self: self, leader: leader,
		timeout: timeout, stop: stop, after: time.After}
	c.startForwarders()
	return c
}

// retryable reports whether err proves that nothing was done, so that the
// request may be sent again: not the leader, unreachable, or no quorum. An
// outcome that may have been applied never is.
func retryable(err error) bool {
	return !errors.Is(err, store.ErrOutcomeUnknown) &&
		(errors.Is(err, errNotLeader) || errors.Is(err, errUnreachable) || errors.Is(err, store.ErrNoQuorum))
}

// viaLeader is the routing policy of every call that must reach the
// leader: local runs when this node leads (it returns errNotLeader
// otherwise), remote with the leader's peer address (waiting for one to be
// known). A retryable error is tried again, following the leader, at most
// routeAttempts times with a doubling pause, until the apply timeout or ctx
// ends: then it is store.ErrNoQuorum. Any other error is returned as it is.
func (c *peerClient) viaLeader(ctx context.Context, local func() error, remote func(addr string) error) error {
	deadline := time.Now().Add(c.timeout)
	pause := routeBackoff
	for attempt := 1; ; attempt++ {
		err := local()
		if errors.Is(err, errNotLeader) {
			var addr string
			if addr, err = c.waitLeader(ctx); err != nil {
				return err
			}
			if addr == c.self {
				err = errNotLeader // this node just won an election: retry locally
			} else {
				err = remote(addr)
			}
		}
		if err == nil || !retryable(err) {
			return err
		}
		if attempt >= routeAttempts || time.Now().After(deadline) {
			return fmt.Errorf("no leader took the request in %d attempts within %v (last: %v): %w", attempt, c.timeout, err, store.ErrNoQuorum)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no leader took the request (last: %v): %w: %w", err, ctx.Err(), store.ErrNoQuorum)
		case <-c.stop:
			return store.ErrClosed
		case <-c.after(pause):
		}
		pause = min(2*pause, routeMaxBackoff)
	}
}

// waitLeader returns the leader's peer address, waiting up to the apply
// timeout (or ctx) for an election to end.
func (c *peerClient) waitLeader(ctx context.Context) (string, error) {
	deadline := time.Now().Add(c.timeout)
	for {
		if addr := c.leader(); addr != "" {
			return addr, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no leader elected within %v: %w", c.timeout, store.ErrNoQuorum)
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no leader: %w: %w", ctx.Err(), store.ErrNoQuorum)
		case <-c.stop:
			return "", store.ErrClosed
		case <-c.after(20 * time.Millisecond):
		}
	}
}

// call sends one request to the peer at addr, bounded by timeout, and
// decodes a 200 answer's JSON into out (unless out is nil). Its errors are
// the peer API's one error policy:
//   - errUnreachable: the connection failed before the request was sent,
//     or a GET got no answer (a read changes nothing);
//   - store.ErrOutcomeUnknown: any other request was sent, or may have
//     been, and no (readable) answer came;
//   - the peer's error answer, decoded by problemError.
func (c *peerClient) call(ctx context.Context, timeout time.Duration, addr, method, path string, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	unknown := store.ErrOutcomeUnknown
	if method == http.MethodGet {
		unknown = errUnreachable
	}
	resp, err := c.client.Do(req)
	if err != nil {
		if errors.Is(err, errUnreachable) {
			return err
		}
		return fmt.Errorf("%w: %w", err, unknown)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s%s: %w", method, addr, path, problemError(resp))
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s%s: read the answer: %v: %w", method, addr, path, err, unknown)
	}
	return nil
}

// problemError decodes a peer's error answer (wire.ReadProblem) into the
// error the peer raised: its code's sentinel in errcode's table
// (errNotLeader for not_leader), so a request relayed to the leader fails
// as it would have there. A code outside the table (internal there,
// internal here) or a body that is not a problem gives the problem itself,
// which names its code, status and detail.
func problemError(resp *http.Response) error {
	p := wire.ReadProblem(resp)
	if err := errcode.FromCode(p.Code, p.Detail); err != nil {
		return err
	}
	return p
}
