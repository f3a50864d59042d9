package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"kvstore.dev/kvstore/bench/internal/proc"
	"kvstore.dev/kvstore/bench/internal/report"
	"kvstore.dev/kvstore/wire"
)

// readyTimeout bounds how long a freshly started server may take to
// become ready.
const readyTimeout = 60 * time.Second

// server is a running target: its process and a client for it.
type server struct {
	proc   *proc.Process
	client kvClient
}

// close shuts the client and the process down.
func (s *server) close() error {
	s.client.Close()
	return s.proc.Stop(15 * time.Second)
}

// closeOrWarn closes c (a server or a cluster) and warns if that fails.
func closeOrWarn(c interface{ close() error }) {
	if err := c.close(); err != nil {
		warnf("%v", err)
	}
}

// target describes how to start one of the benchmarked systems.
type target struct {
	name string
	// verify is true when GETs must return exactly the stored value;
	// false when only the length is checked (bare-http's constant body).
	verify bool
	start  func(ctx context.Context, cfg *config, dir string, clients int) (*server, error)
}

// targets lists every known target, in run order.
var targets = []target{
	{name: report.BareHTTP, verify: false, start: startBare},
	{name: report.Etcd, verify: true, start: startEtcd},
	{name: report.KVStore, verify: true, start: startKVStore},
}

// findTarget returns the target called name.
func findTarget(name string) (target, bool) {
	for _, t := range targets {
		if t.name == name {
			return t, true
		}
	}
	return target{}, false
}

// startKVStore starts bin/kvstore on a fresh data directory under dir.
func startKVStore(ctx context.Context, cfg *config, dir string, clients int) (*server, error) {
	addrs, err := proc.FreeAddrs(1)
	if err != nil {
		return nil, err
	}
	token, err := randomToken()
	if err != nil {
		return nil, err
	}
	dataDir := filepath.Join(dir, "data")
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("kvstore: create data dir: %w", err)
	}
	addr := addrs[0]
	p, err := proc.StartReady(ctx, proc.Spec{Name: report.KVStore, Bin: cfg.kvstoreBin, Log: filepath.Join(dir, "kvstore.log"),
		Args: []string{"--listen", addr, "--debug-listen", "127.0.0.1:0", "--data-dir", dataDir, "--log-format", "json"},
		Env:  []string{"KVSTORE_ADMIN_TOKEN=" + token}}, readyTimeout, proc.HTTP("http://"+addr+wire.PathReadyz))
	if err != nil {
		return nil, err
	}
	return &server{proc: p, client: newHTTPClient(addr, token, clients)}, nil
}

// startBare starts kvbench's own bare-http subcommand in a separate
// process. It is driven with exactly the requests kvstore gets.
func startBare(ctx context.Context, cfg *config, dir string, clients int) (*server, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("bare-http: find own executable: %w", err)
	}
	addrs, err := proc.FreeAddrs(1)
	if err != nil {
		return nil, err
	}
	addr := addrs[0]
	p, err := proc.StartReady(ctx, proc.Spec{Name: report.BareHTTP, Bin: self, Log: filepath.Join(dir, "bare-http.log"),
		Args: []string{bareCommand, "-listen", addr, "-value-size", strconv.Itoa(cfg.valueSize)}}, readyTimeout, proc.HTTP("http://"+addr+"/"))
	if err != nil {
		return nil, err
	}
	return &server{proc: p, client: newHTTPClient(addr, "bare-http-ignores-this", clients)}, nil
}

// randomToken returns a fresh random admin token.
func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	return hex.EncodeToString(b), nil
}
