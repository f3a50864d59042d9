package cluster

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"kvstore.dev/kvstore/internal/store"
	"kvstore.dev/kvstore/wire"
)

// TestReadmittedThroughAServiceName is a StatefulSet scaled 3 → 1 → 3 on
// kept volumes: the two removed servers come back with their Raft state and
// Join names the headless Service, which resolves to every pod, themselves
// first. Each must ask the addresses one by one (not the name, whose pooled
// connection would keep reaching the same pod) and be re-admitted, and then
// hold what was written while it was away.
func TestReadmittedThroughAServiceName(t *testing.T) {
	nodes := startCluster(t, 3)
	ctx := context.Background()
	leader := leaderOf(t, nodes)
	var gone []*testNode
	for _, n := range nodes {
		if n != leader {
			gone = append(gone, n)
		}
	}
	for _, n := range gone {
		// A removal whose outcome was unknown may have been made: then
		// its retry finds the server gone already.
		err := asClient(t, "remove "+n.id, func() error { return leader.RemoveMember(ctx, n.id) })
		if err != nil && !errors.Is(err, ErrNotMember) {
			t.Fatalf("remove %s: %v", n.id, err)
		}
		n.stop()
	}
	if err := asClient(t, "put while away", func() error { _, err := put(ctx, leader, "while-away", "v"); return err }); err != nil {
		t.Fatal(err)
	}

	const service = "peers.test.invalid:7001"
	// Every pod's own address first, then the other returning pod, then
	// the leader: the order in which a name with no load balancing could
	// answer.
	serviceFor := func(self *testNode) func(context.Context, string) ([]string, error) {
		return func(_ context.Context, hp string) ([]string, error) {
			if hp != service {
				return []string{hp}, nil
			}
			addrs := []string{self.addr}
			for _, n := range gone {
				if n != self {
					addrs = append(addrs, n.addr)
				}
			}
			return append(addrs, leader.addr), nil
		}
	}
	var back []*testNode
	for _, n := range gone {
		back = append(back, startNode(t, n.id, n.dir, n.addr, false, []string{service}, func(c *Config) { c.Resolve = serviceFor(n) }))
	}
	waitFor(t, "both returning servers members again", func() error {
		st, err := leader.Status(ctx)
		if err != nil {
			return err
		}
		for _, n := range back {
			if !slices.ContainsFunc(st.Members, func(m wire.Member) bool { return m.ID == n.id }) {
				return fmt.Errorf("%s is not a member: %+v", n.id, st.Members)
			}
		}
		return nil
	})
	for _, n := range back {
		if err := asClient(t, "read barrier on "+n.id, func() error { _, err := n.ReadBarrier(ctx, Linearizable); return err }); err != nil {
			t.Fatalf("read barrier on %s: %v", n.id, err)
		}
		if kv, err := n.st.Get("while-away", time.Now(), true); err != nil || string(kv.Value) != "v" {
			t.Errorf("%s after re-admission: while-away = %q, %v", n.id, kv.Value, err)
		}
	}
}

// TestJoinTargets: the Join entries resolved, in order and without
// duplicates, this node's own address (as advertised, or as its name
// resolves) left out.
func TestJoinTargets(t *testing.T) {
	names := map[string][]string{
		"peers:7001":    {"10.0.0.2:7001", "10.0.0.1:7001", "10.0.0.3:7001"},
		"self.dns:7001": {"10.0.0.1:7001"},
		"other:7001":    {"10.0.0.3:7001"},
	}
	resolve := func(_ context.Context, hp string) ([]string, error) {
		if a, ok := names[hp]; ok {
			return a, nil
		}
		return nil, errors.New("no such host " + hp)
	}
	for _, tc := range []struct {
		name, advertise string
		join            []string
		want            []string
		wantErr         bool
	}{
		{"a service name leaves out this pod", "self.dns:7001", []string{"peers:7001"}, []string{"10.0.0.2:7001", "10.0.0.3:7001"}, false},
		{"duplicates once, in order", "self.dns:7001", []string{"other:7001", "peers:7001"}, []string{"10.0.0.3:7001", "10.0.0.2:7001"}, false},
		{"its own advertised entry", "self.dns:7001", []string{"self.dns:7001", "other:7001"}, []string{"10.0.0.3:7001"}, false},
		{"an entry that does not resolve is skipped", "self.dns:7001", []string{"gone:7001", "other:7001"}, []string{"10.0.0.3:7001"}, false},
		{"none resolves", "self.dns:7001", []string{"gone:7001"}, nil, true},
		{"only itself", "self.dns:7001", []string{"self.dns:7001"}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := &Node{cfg: Config{PeerAdvertise: tc.advertise, Join: tc.join, Resolve: resolve}}
			got, err := n.joinTargets(context.Background())
			if (err != nil) != tc.wantErr || !slices.Equal(got, tc.want) {
				t.Errorf("joinTargets = %q, %v; want %q (error %v)", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

// TestResolveHostPort: an IP stands for itself; a name is looked up.
func TestResolveHostPort(t *testing.T) {
	got, err := resolveHostPort(context.Background(), "127.0.0.9:7001")
	if err != nil || !slices.Equal(got, []string{"127.0.0.9:7001"}) {
		t.Errorf("an IP: %q, %v", got, err)
	}
	got, err = resolveHostPort(context.Background(), "localhost:7001")
	if err != nil || !slices.Contains(got, "127.0.0.1:7001") {
		t.Errorf("localhost: %q, %v", got, err)
	}
	if _, err := resolveHostPort(context.Background(), "no-port"); err == nil {
		t.Error("no port: no error")
	}
}

// TestBootstrapWaitsUntilAllowed is the first server of a formed cluster
// coming back on an empty volume while the other two are down: it finds no
// cluster to join, and with MayBootstrap refusing (the operator's answer
// once the cluster has formed) it must keep asking rather than start a
// second cluster of itself. When the others return it joins theirs and
// holds what was written before; a node that bootstrapped would hold
// nothing and lead a cluster of one.
func TestBootstrapWaitsUntilAllowed(t *testing.T) {
	nodes := startCluster(t, 3)
	ctx := context.Background()
	leader := leaderOf(t, nodes)
	if err := asClient(t, "put before", func() error { _, err := put(ctx, leader, "before", "v"); return err }); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		n.stop()
	}

	var asked atomic.Int32
	refuse := func(c *Config) {
		c.MayBootstrap = func() error { asked.Add(1); return errors.New("the cluster has formed") }
	}
	type started struct {
		n   *testNode
		err error
	}
	first := make(chan started, 1)
	dir := t.TempDir() // n0's volume, empty
	go func() {
		st, err := store.Open(filepath.Join(dir, store.DBFile), store.Options{})
		if err != nil {
			first <- started{err: err}
			return
		}
		cfg := fastConfig("n0", dir, nodes[0].addr, true, []string{nodes[1].addr, nodes[2].addr})
		refuse(&cfg)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		n, err := Start(ctx, cfg, st)
		if err != nil {
			st.Close()
			first <- started{err: err}
			return
		}
		first <- started{n: &testNode{Node: n, st: st, dir: dir, addr: nodes[0].addr, id: "n0"}}
	}()
	waitFor(t, "n0 asked whether it may bootstrap, twice", func() error {
		if a := asked.Load(); a < 2 {
			return fmt.Errorf("asked %d times", a)
		}
		return nil
	})
	select {
	case s := <-first:
		if s.n != nil {
			s.n.stop()
		}
		t.Fatalf("n0 started while bootstrapping was refused and no peer ran: %v", s.err)
	default:
	}

	startNode(t, "n1", nodes[1].dir, nodes[1].addr, false, []string{nodes[2].addr})
	startNode(t, "n2", nodes[2].dir, nodes[2].addr, false, []string{nodes[1].addr})
	var n0 *testNode
	select {
	case s := <-first:
		if s.err != nil {
			t.Fatalf("n0: %v", s.err)
		}
		n0 = s.n
		t.Cleanup(n0.stop)
	case <-time.After(time.Minute):
		t.Fatal("n0 did not join the returning cluster within a minute")
	}
	if err := asClient(t, "read barrier on n0", func() error { _, err := n0.ReadBarrier(ctx, Linearizable); return err }); err != nil {
		t.Fatal(err)
	}
	if kv, err := n0.st.Get("before", time.Now(), true); err != nil || string(kv.Value) != "v" {
		t.Errorf("n0 after joining: before = %q, %v (a cluster of its own?)", kv.Value, err)
	}
	st, err := n0.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Members) != 3 {
		t.Errorf("n0 sees %d members (%+v), want all three", len(st.Members), st.Members)
	}
}
