package cluster

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kvstore.dev/kvstore/internal/testlog"
	"kvstore.dev/kvstore/test/harness"
)

// Peer tokens of the rotation tests: A is rotated to B; C is another
// cluster's.
var (
	tokenA = strings.Repeat("a", 24)
	tokenB = strings.Repeat("b", 24)
	tokenC = strings.Repeat("c", 24)
)

// staticAuth is a peerAuth holding tokens, the first signing.
func staticAuth(t *testing.T, tokens ...string) *peerAuth {
	t.Helper()
	a, err := newPeerAuth(strings.Join(tokens, "\n"), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// talks reports whether a client authenticating with client can open a
// peer connection to a mux authenticating with server and get an answer.
func talks(t *testing.T, server, client *peerAuth) error {
	t.Helper()
	m, _ := startTestMuxAuth(t, server, defaultMuxOptions(), nil)
	conn, err := dial(m.ln.Addr().String(), kindHTTP, client, 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	return peerGet(conn, bufio.NewReader(conn))
}

// TestPeerTokenRotation runs the two-phase rotation of the peer token
// from A to B: nodes one step apart talk both ways ({A} and {A,B}; {A,B}
// and {B,A}; {B,A} and {B}), and a node with another token (C) is
// refused by each of them, both ways.
func TestPeerTokenRotation(t *testing.T) {
	steps := [][]string{{tokenA}, {tokenA, tokenB}, {tokenB, tokenA}, {tokenB}}
	name := func(tokens []string) string {
		var s []string
		for _, tok := range tokens {
			s = append(s, tok[:1])
		}
		return "{" + strings.ToUpper(strings.Join(s, ",")) + "}"
	}
	for i := range steps {
		pairs := [][2][]string{{steps[i], steps[i]}}
		if i+1 < len(steps) {
			pairs = append(pairs, [2][]string{steps[i], steps[i+1]}, [2][]string{steps[i+1], steps[i]})
		}
		for _, p := range pairs {
			t.Run(name(p[0])+" serves "+name(p[1]), func(t *testing.T) {
				if err := talks(t, staticAuth(t, p[0]...), staticAuth(t, p[1]...)); err != nil {
					t.Errorf("refused: %v", err)
				}
			})
		}
		t.Run(name(steps[i])+" and {C}", func(t *testing.T) {
			node, other := staticAuth(t, steps[i]...), staticAuth(t, tokenC)
			if err := talks(t, node, other); !errors.Is(err, errPeerAuth) {
				t.Errorf("{C} dialing: %v, want errPeerAuth", err)
			}
			if err := talks(t, other, node); !errors.Is(err, errPeerAuth) {
				t.Errorf("dialing {C}: %v, want errPeerAuth", err)
			}
		})
	}
	// Two steps apart the cluster would split: the rotation's steps must
	// each reach every node before the next.
	if err := talks(t, staticAuth(t, tokenB, tokenA), staticAuth(t, tokenA)); !errors.Is(err, errPeerAuth) {
		t.Errorf("{B,A} serving {A}: %v, want errPeerAuth", err)
	}
}

// TestPeerTokenFileReload rotates a node's peer token file from A to B
// while it serves: each rewrite is picked up on a handshake once the
// check interval has passed, without a restart; a file that does not
// parse keeps the tokens before it; and once the file holds B alone a
// node still on A is refused.
func TestPeerTokenFileReload(t *testing.T) {
	file := filepath.Join(t.TempDir(), "peer-tokens")
	write := func(tokens ...string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(strings.Join(tokens, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(tokenA)
	logs := &testlog.Buffer{}
	server, err := newPeerAuth("ignored when there is a file", file, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: time.Now()}
	server.file.now = clock.now
	m, _ := startTestMuxAuth(t, server, defaultMuxOptions(), nil)
	try := func(client ...string) error {
		t.Helper()
		conn, err := dial(m.ln.Addr().String(), kindHTTP, staticAuth(t, client...), 5*time.Second)
		if err != nil {
			return err
		}
		defer conn.Close()
		return peerGet(conn, bufio.NewReader(conn))
	}
	if err := try(tokenA); err != nil {
		t.Fatalf("{A} before the rotation: %v", err)
	}

	write(tokenA, tokenB)
	if err := try(tokenB); !errors.Is(err, errPeerAuth) {
		t.Fatalf("{B} within the check interval: %v, want errPeerAuth (the file is not re-read yet)", err)
	}
	clock.add(peerTokensInterval)
	for _, c := range [][]string{{tokenA}, {tokenA, tokenB}, {tokenB, tokenA}} {
		if err := try(c...); err != nil {
			t.Errorf("%d tokens, against {A,B}: %v", len(c), err)
		}
	}

	write("too short")
	clock.add(peerTokensInterval)
	if err := try(tokenA); err != nil {
		t.Errorf("{A} after a bad file: %v, want the previous tokens kept", err)
	}
	if !strings.Contains(logs.String(), "peer token file reload failed") || strings.Contains(logs.String(), tokenA[:8]) {
		t.Errorf("logs, want the failed reload and no token:\n%s", logs.String())
	}

	write(tokenB, tokenA)
	clock.add(peerTokensInterval)
	if err := try(tokenB); err != nil {
		t.Errorf("{B} against {B,A}: %v", err)
	}
	write(tokenB)
	clock.add(peerTokensInterval)
	if err := try(tokenB); err != nil {
		t.Errorf("{B} against {B}: %v", err)
	}
	if err := try(tokenA); !errors.Is(err, errPeerAuth) {
		t.Errorf("{A} against {B}: %v, want errPeerAuth", err)
	}
}

// TestPeerTokenConfig checks Config.Validate and newPeerAuth on peer
// tokens: several lines are several tokens, a short one is refused, and a
// missing file fails the start naming the field.
func TestPeerTokenConfig(t *testing.T) {
	if _, err := newPeerAuth(tokenA+"\nshort", "", nil); err == nil || strings.Contains(err.Error(), "short") {
		t.Errorf("a short second token: %v, want an error without the token", err)
	}
	if a := staticAuth(t, tokenB, tokenA); len(a.tokens()) != 2 || string(a.tokens()[0]) != tokenB {
		t.Errorf("tokens %q, want B signing then A", a.tokens())
	}
	_, err := newPeerAuth("", filepath.Join(t.TempDir(), "missing"), nil)
	if err == nil || !strings.Contains(err.Error(), "cluster.peer_token_file") {
		t.Errorf("missing file: %v, want an error naming cluster.peer_token_file", err)
	}
}

// TestNodeReloadsPeerTokenFile runs a node started with
// Config.PeerTokenFile through a rotation from its token to B: peers with
// B are accepted once the file names B, and peers with the old token are
// refused once it names B alone, without a restart.
func TestNodeReloadsPeerTokenFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "peer-tokens")
	write := func(tokens ...string) {
		t.Helper()
		tmp := file + ".new"
		if err := os.WriteFile(tmp, []byte(strings.Join(tokens, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			t.Fatal(err)
		}
	}
	write(testToken)
	n := startNode(t, "n0", t.TempDir(), harness.FreeAddr(t), true, nil, func(c *Config) { c.PeerToken, c.PeerTokenFile = "", file })
	try := func(tokens ...string) error {
		conn, err := dial(n.addr, kindHTTP, staticAuth(t, tokens...), 5*time.Second)
		if err == nil {
			conn.Close()
		}
		return err
	}
	if err := try(testToken); err != nil {
		t.Fatalf("the token of the file at start: %v", err)
	}
	write(testToken, tokenB)
	write(tokenB, testToken)
	harness.Eventually(t, "a peer with B alone accepted", 10*time.Second, func() error { return try(tokenB) })
	write(tokenB)
	harness.Eventually(t, "a peer with the old token refused", 10*time.Second, func() error {
		if err := try(testToken); !errors.Is(err, errPeerAuth) {
			return fmt.Errorf("dial with the old token: %v, want errPeerAuth", err)
		}
		return nil
	})
}
