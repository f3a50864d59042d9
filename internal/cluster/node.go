package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"kvstore.dev/kvstore/internal/store"
)

// Node is one member of a replicated store. Its methods are safe for
// concurrent use; Close stops it.
type Node struct {
	cfg       Config
	st        *store.Store
	fsm       *fsm
	raft      *raft.Raft
	logs      *logStore // Raft's log and stable store (logstore.go)
	mux       *peerMux
	peer      *http.Server
	pacer     *pacer          // puts the leader's proposals in its log (pacer.go)
	flusher   *store.Flusher  // flushes the store by cfg.Flush; the pacer waits on it
	peers     *peerClient     // to other nodes' peer HTTP API (peerclient.go)
	transport *http.Transport // peers'; its idle connections are dropped when the leader changes

	// readyTerm is the term in which this node, as leader, has applied
	// everything committed before it (a barrier, run by the first read of
	// the term): only then is its state machine's index a safe read index.
	readyTerm atomic.Uint64

	stop     chan struct{}
	done     chan struct{}
	observer *raft.Observer
	obsCh    chan raft.Observation
	leaderCh atomic.Uint64 // leader changes seen, for metrics
	// leaderLost is when this node last saw its leader go (Unix
	// nanoseconds; 0: not since it last knew one), from Raft's leader
	// observations; Ready's grace counts from it.
	leaderLost atomic.Int64
}

// Start opens the Raft log in cfg.Dir, starts the peer port and Raft, and
// bootstraps or joins a cluster when this node has no Raft state yet. The
// returned node may not have a leader yet; Propose and reads wait for one
// up to their context.
func Start(ctx context.Context, cfg Config, st *store.Store) (*Node, error) {
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "snapshots"), 0o700); err != nil {
		return nil, fmt.Errorf("cluster dir: %w", err)
	}
	hlog := hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: cfg.RaftLog, JSONFormat: true})
	logs, err := openLogStore(cfg.Dir, cfg.LogSegmentSize, true, hlog.Named("wal"))
	if errors.Is(err, ErrLogFormat) {
		return nil, fmt.Errorf("refusing to start: %w", err)
	} else if err != nil {
		return nil, err
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(cfg.Dir, "snapshots"), 2, hlog)
	if err != nil {
		logs.Close()
		return nil, fmt.Errorf("snapshot store: %w", err)
	}
	existing, err := raft.HasExistingState(logs, logs, snaps)
	if err != nil {
		logs.Close()
		return nil, fmt.Errorf("read raft state: %w", err)
	}
	if cfg.Single && !existing && st.AppliedIndex() > 0 {
		if err := seedSnapshot(st, singleConfiguration(cfg.NodeID), snaps); err != nil {
			logs.Close()
			return nil, err
		}
		cfg.Logger.Info("store adopted as the initial state of a one-server cluster", "applied_index", st.AppliedIndex())
		existing = true
	}
	if err := checkStoreNotAhead(st, cfg.Dir, logs, snaps); err != nil {
		logs.Close()
		return nil, err
	}
	f := newFSM(st, store.NewStamper(cfg.Clock))
	f.onSnapshot = cfg.OnSnapshot
	n := &Node{cfg: cfg, st: st, fsm: f, logs: logs, stop: make(chan struct{}), done: make(chan struct{})}
	auth := &peerAuth{token: []byte(cfg.PeerToken)}
	if !cfg.Single {
		if auth, err = newPeerAuth(cfg.PeerToken, cfg.PeerTokenFile, cfg.Logger); err != nil {
			logs.Close()
			return nil, err
		}
	}
	if !cfg.Single && cfg.PeerTLS.enabled() {
		if auth.tls, err = newPeerTLS(cfg.PeerTLS, cfg.ClusterName, cfg.Logger); err != nil {
			logs.Close()
			return nil, err
		}
		cfg.Logger.Info("peer port: mutual TLS 1.3", "cluster", auth.tls.cluster)
	} else if !cfg.Single {
		cfg.Logger.Warn("peer traffic is NOT encrypted: Raft and forwarded requests, keys and values included, cross the network in cleartext, " +
			"and only the peer token's challenge-response authenticates peers; set cluster.peer_tls_cert, peer_tls_key and peer_tls_ca " +
			"(--peer-tls-cert, --peer-tls-key, --peer-tls-ca; `kvstore certs --peer` makes them) to require mutual TLS")
	}
	var transport raft.Transport
	if cfg.Single {
		_, transport = raft.NewInmemTransport(singleAddr)
	} else {
		ln, err := net.Listen("tcp", cfg.PeerListen)
		if err != nil {
			logs.Close()
			return nil, fmt.Errorf("cluster.peer_listen: %w", err)
		}
		n.mux = newPeerMux(ln, auth, advertiseAddr(cfg.PeerAdvertise), cfg.Logger)
		// A node with Raft state takes Raft's RPCs at once; one without
		// waits until it is admitted (bootstrapOrJoin).
		n.mux.raftOpen.Store(existing)
		transport = raft.NewNetworkTransportWithLogger(raftLayer{n.mux}, 3, 10*time.Second, hlog)
	}
	n.peers = newPeerClient(auth, cfg.PeerAdvertise, func() string {
		addr, _ := n.raft.LeaderWithID()
		return string(addr)
	}, cfg.ApplyTimeout, n.stop)
	n.transport = n.peers.transport

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.Logger = hlog
	rc.NoSnapshotRestoreOnStart = true // the bbolt file already holds the state
	// Concurrent proposals go to the log in batches (one append and fsync,
	// one round of AppendEntries) instead of one by one.
	rc.BatchApplyCh = true
	rc.MaxAppendEntries = 256
	if cfg.HeartbeatTimeout > 0 {
		rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	}
	if cfg.ElectionTimeout > 0 {
		rc.ElectionTimeout = cfg.ElectionTimeout
	}
	if cfg.LeaderLeaseTimeout > 0 {
		rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	}
	if cfg.SnapshotThreshold > 0 {
		rc.SnapshotThreshold = cfg.SnapshotThreshold
	}
	// Recent entries are served from memory when replicated and applied,
	// rather than read back from the log just written.
	cached, err := raft.NewLogCache(4096, logs)
	if err != nil {
		n.mux.close()
		logs.Close()
		return nil, fmt.Errorf("raft log cache: %w", err)
	}
	r, err := raft.NewRaft(rc, n.fsm, cached, logs, snaps, transport)
	if err != nil {
		n.mux.close()
		logs.Close()
		return nil, fmt.Errorf("start raft: %w", err)
	}
	n.raft = r
	n.flusher = store.StartFlusher(st, cfg.Flush, cfg.Logger)
	f.flusher = n.flusher
	n.pacer = newPacer(n.stop, cfg.ApplyTimeout, f.clock, r.Apply)
	n.pacer.room = n.flusher.WaitForRoom
	n.pacer.logFull = logs.full.Load
	go n.pacer.loop()
	if n.mux != nil {
		n.peer = &http.Server{Handler: n.peerHandler(), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = n.peer.Serve(httpListener{n.mux}) }()
	}
	n.obsCh = make(chan raft.Observation, 16)
	n.observer = raft.NewObserver(n.obsCh, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	r.RegisterObserver(n.observer)
	go n.background()

	switch {
	case !existing:
		if err := n.bootstrapOrJoin(ctx); err != nil {
			_ = n.Close()
			return nil, err
		}
	case cfg.Single:
		if err := checkSingle(r.GetConfiguration(), cfg); err != nil {
			_ = n.Close()
			return nil, err
		}
	default:
		if err := checkNotSingle(r.GetConfiguration(), cfg); err != nil {
			_ = n.Close()
			return nil, err
		}
		cfg.Logger.Info("raft state found: rejoining as before", "node", cfg.NodeID)
		go n.rejoin()
	}
	return n, nil
}

// background counts leader changes and drops pooled connections that may
// lead to a leader that vanished.
func (n *Node) background() {
	defer close(n.done)
	for {
		select {
		case <-n.stop:
			return
		case o := <-n.obsCh: // a leader change
			n.leaderCh.Add(1)
			n.transport.CloseIdleConnections()
			if lo, ok := o.Data.(raft.LeaderObservation); ok && lo.LeaderAddr == "" {
				n.leaderLost.Store(time.Now().UnixNano())
			}
		}
	}
}

// Close leaves Raft running no more: it stops the peer HTTP API (letting
// the forwarded requests it is serving finish, for up to a second, while
// Raft still runs: after a HandOff they are answered not-leader and the
// sender retries them at the new leader), shuts Raft down (without leaving
// the configuration), stops the peer port and closes the Raft log. The
// store is the caller's to close.
func (n *Node) Close() error {
	select {
	case <-n.stop:
		return nil
	default:
	}
	if n.peer != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = n.peer.Shutdown(ctx)
		cancel()
	}
	close(n.stop)
	n.flusher.Close()
	<-n.done
	var errs []error
	if n.raft != nil {
		n.raft.DeregisterObserver(n.observer)
		errs = append(errs, n.raft.Shutdown().Error())
	}
	_ = n.mux.close()
	errs = append(errs, n.logs.Close())
	return errors.Join(errs...)
}
