package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/raft"

	"kvstore.dev/kvstore/wire"
)

// rejoin runs for a node that started with its Raft state. It may have
// been removed while it was away (a StatefulSet scaled down and up again
// on kept volumes): then nothing would ever contact it, since the leader
// replicates only to members, so it asks the peers in Join to add it again
// (JoinKept), as a voter unless JoinAsNonvoter, until one answers. A node
// that is still a member is left as it is.
//
// Meanwhile it cannot disturb the cluster: Raft does not campaign while its
// latest configuration gives it no vote, and with an older configuration
// that still does, its pre-vote is refused by the members (it is not in
// their configuration, and they have a leader), so its term stays put.
func (n *Node) rejoin() {
	if len(n.cfg.Join) == 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-n.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := n.join(ctx, true, wire.JoinKept); err != nil && ctx.Err() == nil {
		n.cfg.Logger.Warn("asking to be re-admitted", "err", err)
	}
}

// bootstrapOrJoin runs for a node with no Raft state: it asks the peers in
// Join to add it, and only when none of them answers with a leader and
// Bootstrap is set does it start a new cluster of itself. So a first node
// that lost its volume joins the running cluster rather than starting a
// second one.
//
// A node without Raft state answers no Raft RPC until it has been admitted
// (the peer mux's gate): under its id the configuration may still hold a
// voter that had a log and cast votes this node has forgotten. It asks
// with JoinEmpty, so the leader removes such a stale entry, and commits
// that, before it adds the node again; only then may it vote or count for
// a commit.
//
// MayBootstrap, when set, must allow the bootstrap too; while it does not,
// the node goes on asking Join (the operator allows it only until the
// cluster first formed, so that a first server that lost its volume and
// found the others briefly unreachable cannot start a second cluster).
func (n *Node) bootstrapOrJoin(ctx context.Context) error {
	if len(n.cfg.Join) > 0 {
		var logged time.Time
		for attempt := 1; ; attempt++ {
			err := n.join(ctx, !n.cfg.Bootstrap, wire.JoinEmpty)
			if err == nil {
				n.mux.raftOpen.Store(true)
				return nil
			}
			if !n.cfg.Bootstrap {
				return err
			}
			refused := n.mayBootstrap()
			if refused == nil {
				n.cfg.Logger.Info("no cluster answered; bootstrapping a new one", "err", err)
				break
			}
			if time.Since(logged) >= joinLogEvery {
				n.cfg.Logger.Warn("no cluster answered, and starting a new one is not allowed; asking again",
					"why", refused.Error(), "attempts", attempt, "last", err)
				logged = time.Now()
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("join: %w (bootstrap not allowed: %v; last: %v)", ctx.Err(), refused, err)
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
	if n.mux != nil {
		n.mux.raftOpen.Store(true)
	}
	f := n.raft.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{
		ID: raft.ServerID(n.cfg.NodeID), Address: raft.ServerAddress(n.cfg.PeerAdvertise), Suffrage: raft.Voter,
	}}})
	if err := f.Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return fmt.Errorf("bootstrap: %w", err)
	}
	n.cfg.Logger.Info("bootstrapped a new cluster", "node", n.cfg.NodeID)
	return nil
}

// join asks the peers in Join to add this node, telling them whether it has
// Raft state (state: JoinKept or JoinEmpty). Each Join entry is resolved
// again on every round, and every address it stands for is asked by its
// own address (joinTargets): a headless Service's name resolves to every
// pod, this one too, and a connection pooled under the name would keep
// reaching the same pod, which may be this one or another non-member.
// With persist it keeps trying until ctx ends, logging how it fares at
// most every joinLogEvery; otherwise one round over the peers.
func (n *Node) join(ctx context.Context, persist bool, state string) error {
	var last error
	var logged time.Time
	for attempt := 1; ; attempt++ {
		targets, err := n.joinTargets(ctx)
		if err != nil {
			last = err
		}
		for _, peer := range targets {
			err := n.askJoin(ctx, peer, state)
			if err == nil {
				n.cfg.Logger.Info("joined the cluster", "via", peer, "attempts", attempt)
				return nil
			}
			last = fmt.Errorf("ask %s: %w", peer, err)
		}
		if last == nil {
			return errors.New("join: no other peer to ask")
		}
		if !persist {
			return fmt.Errorf("join: no peer added this node: %w", last)
		}
		if time.Since(logged) >= joinLogEvery {
			n.cfg.Logger.Warn("not admitted yet; asking again", "state", state, "attempts", attempt, "peers", targets, "last", last)
			logged = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("join: %w (last: %v)", ctx.Err(), last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// mayBootstrap is cfg.MayBootstrap's answer; nil when unset.
func (n *Node) mayBootstrap() error {
	if n.cfg.MayBootstrap == nil {
		return nil
	}
	return n.cfg.MayBootstrap()
}

// joinLogEvery bounds how often a node that keeps asking to join says so.
const joinLogEvery = 30 * time.Second

// joinTargets resolves the Join entries into the peer addresses to ask, in
// order and without duplicates, leaving out this node's own (PeerAdvertise,
// and any address it resolves to). An entry that does not resolve is left
// out; the error says so when no entry gave an address.
func (n *Node) joinTargets(ctx context.Context) ([]string, error) {
	resolve := n.cfg.Resolve
	if resolve == nil {
		resolve = resolveHostPort
	}
	self := map[string]bool{n.cfg.PeerAdvertise: true}
	if own, err := resolve(ctx, n.cfg.PeerAdvertise); err == nil {
		for _, a := range own {
			self[a] = true
		}
	}
	var out []string
	var errs []error
	seen := map[string]bool{}
	for _, j := range n.cfg.Join {
		if self[j] {
			continue
		}
		addrs, err := resolve(ctx, j)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, a := range addrs {
			if !self[a] && !seen[a] {
				seen[a] = true
				out = append(out, a)
			}
		}
	}
	if len(out) == 0 && len(errs) > 0 {
		return nil, fmt.Errorf("resolve the peers to join: %w", errors.Join(errs...))
	}
	return out, nil
}

// resolveHostPort is Config.Resolve's default: host:port with host looked
// up by the default resolver (an IP stands for itself).
func resolveHostPort(ctx context.Context, hostport string) ([]string, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, err
	}
	if net.ParseIP(host) != nil {
		return []string{hostport}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupHost(ctx, host)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = net.JoinHostPort(ip, port)
	}
	return out, nil
}
