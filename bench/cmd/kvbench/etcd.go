package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"kvstore.dev/kvstore/bench/internal/proc"
	"kvstore.dev/kvstore/bench/internal/report"
)

// startEtcd starts a single-member etcd on loopback with a fresh data
// directory under dir and default durability settings.
func startEtcd(ctx context.Context, cfg *config, dir string, _ int) (*server, error) {
	addrs, err := proc.FreeAddrs(2)
	if err != nil {
		return nil, err
	}
	clientURL, peerURL := "http://"+addrs[0], "http://"+addrs[1]
	p, err := proc.StartReady(ctx, proc.Spec{Name: report.Etcd, Bin: cfg.etcdBin, Log: filepath.Join(dir, "etcd.log"),
		Args: etcdArgs("kvbench", filepath.Join(dir, "data"), clientURL, peerURL, "kvbench="+peerURL)},
		readyTimeout, probeEtcdHealth(clientURL+"/health"))
	if err != nil {
		return nil, err
	}
	client, err := newEtcdClient(clientURL, cfg.etcdConns)
	if err != nil {
		_ = p.Stop(5 * time.Second)
		return nil, err
	}
	return &server{proc: p, client: client}, nil
}

// etcdArgs returns the flags of member name of a new cluster, the members
// in initial ("name=peerURL,..."), with data in dataDir and default
// durability settings.
func etcdArgs(name, dataDir, clientURL, peerURL, initial string) []string {
	return []string{"--name", name, "--data-dir", dataDir,
		"--listen-client-urls", clientURL, "--advertise-client-urls", clientURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", initial, "--initial-cluster-state", "new", "--log-level", "warn"}
}

// probeEtcdHealth returns a probe that succeeds once etcd's /health
// reports {"health":"true"}, i.e. the member has a leader.
func probeEtcdHealth(url string) proc.Probe {
	return proc.HTTPCheck(url, func(resp *http.Response) error {
		var h struct {
			Health string `json:"health"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
			return fmt.Errorf("decode: %w", err)
		}
		if h.Health != "true" {
			return fmt.Errorf("health %q", h.Health)
		}
		return nil
	})
}

// etcdClient drives etcd through the official Go client. Calls are
// spread round-robin over conns clients (gRPC connections); each client
// balances over its endpoints itself.
type etcdClient struct {
	clients []*clientv3.Client
	next    atomic.Uint64
	// linearizable makes Get a linearizable (quorum) read rather than a
	// serializable (local) one.
	linearizable bool
}

// newEtcdClient connects conns official clients to endpoint.
func newEtcdClient(endpoint string, conns int) (*etcdClient, error) {
	return newEtcdClientEndpoints([]string{endpoint}, conns, false)
}

// newEtcdClientEndpoints connects conns official clients, each to all
// endpoints (the client balances its calls over them round robin).
func newEtcdClientEndpoints(endpoints []string, conns int, linearizable bool) (*etcdClient, error) {
	c := &etcdClient{linearizable: linearizable}
	for range conns {
		cli, err := clientv3.New(clientv3.Config{
			Endpoints:   endpoints,
			DialTimeout: 5 * time.Second,
			Logger:      zap.NewNop(),
		})
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("etcd: connect %s: %w", strings.Join(endpoints, ","), err)
		}
		c.clients = append(c.clients, cli)
	}
	return c, nil
}

func (c *etcdClient) pick() *clientv3.Client {
	return c.clients[c.next.Add(1)%uint64(len(c.clients))]
}

// Put implements kvClient.
func (c *etcdClient) Put(ctx context.Context, key, value []byte) error {
	if _, err := c.pick().Put(ctx, string(key), string(value)); err != nil {
		return fmt.Errorf("etcd put %s: %w", key, err)
	}
	return nil
}

// Get implements kvClient with a serializable (local, no quorum) read, or
// a linearizable one if c.linearizable is set.
func (c *etcdClient) Get(ctx context.Context, key, dst []byte) ([]byte, error) {
	var opts []clientv3.OpOption
	if !c.linearizable {
		opts = append(opts, clientv3.WithSerializable())
	}
	resp, err := c.pick().Get(ctx, string(key), opts...)
	if err != nil {
		return nil, fmt.Errorf("etcd get %s: %w", key, err)
	}
	if len(resp.Kvs) != 1 {
		return nil, fmt.Errorf("etcd get %s: %d keys found, want 1", key, len(resp.Kvs))
	}
	return append(dst[:0], resp.Kvs[0].Value...), nil
}

// Close implements kvClient.
func (c *etcdClient) Close() error {
	var first error
	for _, cli := range c.clients {
		if err := cli.Close(); err != nil && first == nil {
			first = fmt.Errorf("etcd: close client: %w", err)
		}
	}
	return first
}

// etcdVersion returns the version reported by `etcd --version`.
func etcdVersion(bin string) string {
	out, err := execOutput(bin, "--version")
	if err != nil {
		return ""
	}
	return parseEtcdVersion(out)
}
