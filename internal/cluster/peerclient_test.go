package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"kvstore.dev/kvstore/internal/errcode"
	"kvstore.dev/kvstore/internal/store"
	"kvstore.dev/kvstore/test/harness"
	"kvstore.dev/kvstore/wire"
)

// testPeer is a peer API on loopback behind a real peer mux (so the
// client's dial and preamble are exercised) that counts its requests.
type testPeer struct {
	addr  string
	calls atomic.Int32
}

func startTestPeer(t *testing.T, h http.HandlerFunc) *testPeer {
	t.Helper()
	p := &testPeer{}
	m, _ := startTestMux(t, defaultMuxOptions(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.calls.Add(1)
		h(w, r)
	}))
	p.addr = m.ln.Addr().String()
	return p
}

// peerAnswer is a test peer's answer by name; cancel ends the caller's
// context.
func peerAnswer(t *testing.T, name string, cancel context.CancelFunc) http.HandlerFunc {
	problem := func(err error) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { writePeer(w, nil, err) }
	}
	switch name {
	case "results":
		return func(w http.ResponseWriter, r *http.Request) {
			writePeer(w, proposeResponse{toWire([]store.Result{{Revision: 7}})}, nil)
		}
	case "index":
		return func(w http.ResponseWriter, r *http.Request) { writePeer(w, readIndexResponse{42}, nil) }
	case "ok":
		return func(w http.ResponseWriter, r *http.Request) { writePeer(w, peerOK, nil) }
	case "not_leader":
		return problem(errNotLeader)
	case "no_quorum":
		return problem(fmt.Errorf("propose: the log did not take the write: %w", store.ErrNoQuorum))
	case "outcome_unknown":
		return problem(fmt.Errorf("propose: leadership lost: %w", store.ErrOutcomeUnknown))
	case "unavailable":
		return problem(fmt.Errorf("propose: %w", store.ErrClosed))
	case "not_member":
		return problem(fmt.Errorf("remove x: %w", errcode.ErrNotMember))
	case "502":
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, "<html>502 Bad Gateway</html>")
		}
	case "drop": // the request arrived; the connection goes without an answer
		return func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			conn.Close()
		}
	case "hang": // the request arrived; the caller gives up before the answer
		return func(w http.ResponseWriter, r *http.Request) {
			cancel()
			<-r.Context().Done()
		}
	}
	t.Fatalf("no answer %q", name)
	return nil
}

// newTestPeerClient returns a client that sees leaders[i] as the leader
// after i retries (the last one from then on). Its pauses take no time;
// at retry cancelAt (unless 0) it cancels ctx and pauses forever instead.
func newTestPeerClient(t *testing.T, leaders []string, cancelAt int32, cancel context.CancelFunc) *peerClient {
	stop := make(chan struct{})
	var retries atomic.Int32
	c := newPeerClient(&peerAuth{token: []byte(muxTestToken)}, "self.invalid:1", func() string {
		return leaders[min(int(retries.Load()), len(leaders)-1)]
	}, 5*time.Second, stop)
	c.after = func(time.Duration) <-chan time.Time {
		if retries.Add(1) == cancelAt {
			cancel()
			return nil
		}
		ch := make(chan time.Time, 1)
		ch <- time.Time{}
		return ch
	}
	t.Cleanup(func() {
		close(stop)
		c.transport.CloseIdleConnections()
	})
	return c
}

// TestPeerClientPolicy: the routing and error policy of forwarded writes,
// read-index requests and membership calls. Only answers that prove
// nothing was done are retried at the (new) leader; a write whose outcome
// is unknown is sent once.
func TestPeerClientPolicy(t *testing.T) {
	notLeader := func() error { return errNotLeader } // this node follows
	ops := map[string]func(c *peerClient, ctx context.Context) error{
		"propose": func(c *peerClient, ctx context.Context) error {
			res, err := c.propose(ctx, []store.Command{{Op: store.OpPut, Key: "k", Value: []byte("v")}},
				func() ([]store.Result, error) { return nil, errNotLeader })
			if err == nil && (len(res) != 1 || res[0].Revision != 7) {
				return fmt.Errorf("results %+v, want one at revision 7", res)
			}
			return err
		},
		"read index": func(c *peerClient, ctx context.Context) error {
			var idx uint64
			err := c.viaLeader(ctx, notLeader, func(addr string) (err error) { idx, err = c.readIndex(ctx, addr); return err })
			if err == nil && idx != 42 {
				return fmt.Errorf("index %d, want 42", idx)
			}
			return err
		},
		"add member": func(c *peerClient, ctx context.Context) error {
			return c.viaLeader(ctx, notLeader, func(addr string) error {
				return c.addMember(ctx, addr, wire.AddMemberRequest{ID: "n9", Address: "n9:7000"})
			})
		},
	}
	tests := map[string]struct {
		op        string
		peers     []string // each leader's answer, in turn; "refused": nothing listens
		cancelAt  int32    // the retry at which the caller's context ends (0: never)
		wantErr   error    // nil: the call succeeds
		wantText  string   // in the error
		wantCalls []int32  // requests each peer got
	}{
		"propose: not_leader, then the new leader": {op: "propose", peers: []string{"not_leader", "results"}, wantCalls: []int32{1, 1}},
		"propose: refused, then the new leader":    {op: "propose", peers: []string{"refused", "results"}, wantCalls: []int32{0, 1}},
		"propose: no_quorum until the context ends": {op: "propose", peers: []string{"no_quorum"}, cancelAt: 3,
			wantErr: store.ErrNoQuorum, wantCalls: []int32{3}},
		"propose: outcome_unknown is not retried": {op: "propose", peers: []string{"outcome_unknown", "results"},
			wantErr: store.ErrOutcomeUnknown, wantCalls: []int32{1, 0}},
		"propose: unavailable is not retried": {op: "propose", peers: []string{"unavailable", "results"},
			wantErr: store.ErrOutcomeUnknown, wantCalls: []int32{1, 0}},
		"propose: dropped after sending, not retried": {op: "propose", peers: []string{"drop", "results"},
			wantErr: store.ErrOutcomeUnknown, wantCalls: []int32{1, 0}},
		"propose: the caller gives up on the way": {op: "propose", peers: []string{"hang", "results"},
			wantErr: store.ErrOutcomeUnknown, wantCalls: []int32{1, 0}},
		"propose: a 502 that is not a problem": {op: "propose", peers: []string{"502", "results"},
			wantErr: store.ErrOutcomeUnknown, wantText: "HTTP 502: <html>502 Bad Gateway</html>", wantCalls: []int32{1, 0}},
		"read index: dropped after sending, retried":  {op: "read index", peers: []string{"drop", "index"}, wantCalls: []int32{1, 1}},
		"read index: not_leader, then the new leader": {op: "read index", peers: []string{"not_leader", "index"}, wantCalls: []int32{1, 1}},
		"add member: not_leader, then the new leader": {op: "add member", peers: []string{"not_leader", "ok"}, wantCalls: []int32{1, 1}},
		"add member: the leader's error, relayed": {op: "add member", peers: []string{"not_member", "ok"},
			wantErr: errcode.ErrNotMember, wantText: "remove x", wantCalls: []int32{1, 0}},
		"add member: dropped after sending, not retried": {op: "add member", peers: []string{"drop", "ok"},
			wantErr: store.ErrOutcomeUnknown, wantCalls: []int32{1, 0}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			peers := make([]*testPeer, len(tc.peers))
			addrs := make([]string, len(tc.peers))
			for i, answer := range tc.peers {
				if answer == "refused" {
					peers[i], addrs[i] = &testPeer{}, harness.FreeAddr(t)
					continue
				}
				peers[i] = startTestPeer(t, peerAnswer(t, answer, cancel))
				addrs[i] = peers[i].addr
			}
			c := newTestPeerClient(t, addrs, tc.cancelAt, cancel)
			err := ops[tc.op](c, ctx)
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("error %q does not contain %q", err, tc.wantText)
			}
			for i, want := range tc.wantCalls {
				if got := peers[i].calls.Load(); got != want {
					t.Errorf("peer %d (%s) got %d requests, want %d", i, tc.peers[i], got, want)
				}
			}
		})
	}
}

// TestPeerErrorsRoundTrip: every error of errcode's table that the peer API
// answers comes back from problemError with its code, as the client API
// would answer it; an internal error stays internal with its text.
func TestPeerErrorsRoundTrip(t *testing.T) {
	decode := func(err error) error {
		rec := httptest.NewRecorder()
		writePeer(rec, nil, err)
		if ct := rec.Header().Get("Content-Type"); ct != wire.ContentTypeProblem {
			t.Errorf("%v: Content-Type %q", err, ct)
		}
		return problemError(rec.Result())
	}
	for _, e := range errcode.Entries() {
		got := decode(fmt.Errorf("on the leader: %w", e.Err))
		if back, ok := errcode.Lookup(got); !ok || back.Code != e.Code || back.Status != e.Status {
			t.Errorf("%v: relayed as %v (%+v), want code %s", e.Err, got, back, e.Code)
		}
		if !strings.Contains(got.Error(), "on the leader") {
			t.Errorf("%v: relayed as %q, without the leader's text", e.Err, got)
		}
	}
	got := decode(errors.New("disk on fire"))
	if _, ok := errcode.Lookup(got); ok || !strings.Contains(got.Error(), "disk on fire") || !strings.Contains(got.Error(), wire.CodeInternal) {
		t.Errorf("internal error relayed as %q", got)
	}
}

// TestStatusFanOut: each member's status is asked of it; one that does not
// answer carries the error, this node's own is not asked.
func TestStatusFanOut(t *testing.T) {
	peer := startTestPeer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != wire.PeerPathStatus {
			http.NotFound(w, r)
			return
		}
		writePeer(w, wire.NodeStatus{ID: "b", State: wire.StateFollower, Term: 3}, nil)
	})
	down := harness.FreeAddr(t)
	c := newTestPeerClient(t, []string{peer.addr}, 0, nil)
	self := wire.NodeStatus{ID: "a", State: wire.StateLeader, Term: 3}
	members := []wire.Member{{ID: "a", Address: "self.invalid:1"}, {ID: "b", Address: peer.addr}, {ID: "c", Address: down}}
	c.statuses(context.Background(), members, self)
	for i, want := range []string{wire.StateLeader, wire.StateFollower, ""} { // "": no status
		m := members[i]
		switch {
		case want == "" && (m.Status != nil || !strings.Contains(m.Error, down)):
			t.Errorf("%s: status %+v, error %q; want none and an error naming %s", m.ID, m.Status, m.Error, down)
		case want != "" && (m.Status == nil || m.Status.State != want || m.Error != ""):
			t.Errorf("%s: status %+v, error %q; want state %s", m.ID, m.Status, m.Error, want)
		}
	}
	if n := peer.calls.Load(); n != 1 {
		t.Errorf("the answering member was asked %d times, want 1", n)
	}
}

// TestPeerRoutes: the peer API serves wire's paths, and answers a request
// it refuses before touching Raft with a problem body.
func TestPeerRoutes(t *testing.T) {
	h := (&Node{}).peerHandler()
	for name, tc := range map[string]struct {
		method, path string
		body         string
		wantStatus   int
		wantCode     string
	}{
		"remove a bad id": {http.MethodDelete, wire.PeerMemberPath("-bad"), "", http.StatusBadRequest, wire.CodeInvalidArgument},
		"add a bad body":  {http.MethodPost, wire.PeerPathMembers, "{", http.StatusBadRequest, wire.CodeInvalidArgument},
		"a bad proposal":  {http.MethodPost, wire.PeerPathPropose, "", http.StatusInternalServerError, wire.CodeInternal},
	} {
		t.Run(name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body)))
			p := wire.ReadProblem(rec.Result())
			if rec.Code != tc.wantStatus || p.Code != tc.wantCode {
				t.Errorf("%s %s: %d %+v, want %d %s", tc.method, tc.path, rec.Code, p, tc.wantStatus, tc.wantCode)
			}
		})
	}
}
