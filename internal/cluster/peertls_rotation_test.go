package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"kvstore.dev/kvstore/internal/certs"
	"kvstore.dev/kvstore/internal/store"
)

// TestPeerTLSRotation: while a three-node mTLS cluster takes writes, each
// node's leaf is replaced, then the nodes move to a new CA (a bundle of the
// old and the new, leaves from the new, the old dropped), all without a
// restart. Writes keep succeeding (retriable errors allowed); every node
// serves its newest leaf on new connections; at the end a peer with a
// certificate of the old CA is refused, and a node restarted then rejoins
// on the new material alone.
func TestPeerTLSRotation(t *testing.T) {
	pki := newTestPKI(t)
	nodes := startCluster(t, 3, inMode(pki.apply))
	ctx := context.Background()
	caOld, caNew := pki.ca, newTestCA(t)

	stop, failed := make(chan struct{}), make(chan error, 1)
	var writes atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // writes through each node in turn
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			_, err := put(ctx, nodes[i%len(nodes)], fmt.Sprintf("rot/%d", i), "v")
			switch {
			case err == nil:
				writes.Add(1)
			case errors.Is(err, store.ErrNoQuorum) || errors.Is(err, store.ErrOutcomeUnknown):
			default:
				failed <- fmt.Errorf("write %d through %s: %w", i, nodes[i%len(nodes)].id, err)
				return
			}
		}
	}()
	stopWriter := sync.OnceFunc(func() { close(stop); wg.Wait() })
	t.Cleanup(stopWriter)
	progress := func(what string) {
		t.Helper()
		from := writes.Load()
		waitFor(t, "writes "+what, func() error {
			select {
			case err := <-failed:
				t.Fatal(err)
			default:
			}
			if n := writes.Load() - from; n < 30 {
				return fmt.Errorf("%d writes", n)
			}
			return nil
		})
	}
	// serves: a new connection to n, with a client certificate of ca, is
	// accepted and shown n's newest leaf.
	serves := func(n *testNode, ca *certs.CA) {
		t.Helper()
		want := pki.leaf(n.id)
		cfg := clientTLS(t, ca, testClusterName)
		waitFor(t, n.id+" serves its new leaf", func() error {
			got, err := probe(n.addr, cfg, testToken)
			if err != nil {
				return err
			}
			if !got.Equal(want) {
				return fmt.Errorf("serves serial %s, want %s", got.SerialNumber, want.SerialNumber)
			}
			return nil
		})
	}
	progress("before the rotation")

	for _, n := range nodes {
		pki.writeLeaf(n.id, caOld, testClusterName)
		serves(n, caOld)
		progress("after " + n.id + "'s new leaf")
	}
	for _, n := range nodes {
		pki.writeBundle(n.id, caOld, caNew)
	}
	progress("with both CAs trusted")
	for _, n := range nodes {
		pki.writeLeaf(n.id, caNew, testClusterName)
		serves(n, caNew)
		progress("after " + n.id + "'s leaf from the new CA")
	}
	for _, n := range nodes {
		pki.writeBundle(n.id, caNew)
	}
	// New forwarding connections, on the new material only.
	for _, n := range nodes {
		n.transport.CloseIdleConnections()
	}
	progress("with the old CA dropped")
	stopWriter()
	select {
	case err := <-failed:
		t.Fatal(err)
	default:
	}

	oldPeer := clientTLS(t, caOld, testClusterName)
	for _, n := range nodes {
		// The bundle is checked at most once a second (tlsreload.Interval):
		// the old CA must be refused within that.
		waitFor(t, n.id+" refuses a peer of the dropped CA", func() error {
			if _, err := probe(n.addr, oldPeer, testToken); err == nil {
				return fmt.Errorf("%s accepted a peer with a certificate of the dropped CA", n.id)
			}
			return nil
		})
		serves(n, caNew)
	}

	// A follower restarted now dials, and is dialed, anew.
	leader := leaderOf(t, nodes)
	var f *testNode
	for _, n := range nodes {
		if n != leader {
			f = n
			break
		}
	}
	f.stop()
	back := startNode(t, f.id, f.dir, f.addr, false, []string{leader.addr}, pki.apply)
	if err := asClient(t, "write through the restarted node", func() error { _, err := put(ctx, back, "after-rotation", "1"); return err }); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the restarted node catches up", func() error {
		_, err := back.st.Get("after-rotation", time.Now(), false)
		return err
	})
}
