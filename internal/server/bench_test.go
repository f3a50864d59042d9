package server

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"kvstore.dev/kvstore/internal/config"
	"kvstore.dev/kvstore/wire"
)

// BenchmarkPutSingleVsOneNodeRaft measures PUT throughput with 64
// concurrent clients over HTTP against the two write paths on the same
// machine and store settings: the single node's WAL and committer, and a
// single node run as a one-server Raft cluster (bootstrapping itself).
// Each sub-benchmark's "flush" variant gives both paths the same flush
// policy (the cluster's default) instead of each its own.
//
//	go test -run '^$' -bench PutSingleVsOneNodeRaft -benchtime 20000x -count 3 ./internal/server/
func BenchmarkPutSingleVsOneNodeRaft(b *testing.B) {
	const token = "bench-admin-token-0123456789"
	for _, mode := range []struct {
		name string
		raft bool
		edit func(*config.StoreTuning)
	}{
		{name: "wal"},
		{name: "raft", raft: true},
		{name: "wal-flush5s", edit: func(s *config.StoreTuning) { s.FlushInterval, s.FlushMaxKeys = config.Duration(5*time.Second), 50_000 }},
	} {
		b.Run(mode.name, func(b *testing.B) {
			r := start(b, func(c *config.Config) {
				c.Log.Level = "warn"
				c.Auth.Tokens = []config.Token{{Name: "a", Token: token, Role: "admin"}}
				if mode.edit != nil {
					mode.edit(&c.Store)
				}
				if mode.raft {
					peer := freeAddr(b)
					c.Cluster = config.Cluster{Enabled: true, NodeID: "n0", BootstrapNode: "n0", PeerListen: peer, PeerAdvertise: peer,
						PeerToken: "bench-peer-token-0123456789", HandoffTimeout: c.Cluster.HandoffTimeout}
				}
			})
			base := "http://" + r.api
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			put := func(i int64) error {
				req, _ := http.NewRequest(http.MethodPut, base+wire.KeyPath(fmt.Sprintf("bench/%08d", i)), bytes.NewReader(value))
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := client.Do(req)
				if err != nil {
					return err
				}
				resp.Body.Close()
				if resp.StatusCode >= 300 {
					return fmt.Errorf("PUT: %s", resp.Status)
				}
				return nil
			}
			deadline := time.Now().Add(10 * time.Second) // a Raft node elects itself first
			for put(-1) != nil {
				if time.Now().After(deadline) {
					b.Fatalf("no write succeeded in 10s: %v\n%s", put(-1), r.logs)
				}
				time.Sleep(20 * time.Millisecond)
			}
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for range 64 {
				wg.Go(func() {
					for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
						if err := put(i); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "puts/s")
		})
	}
}

var value = bytes.Repeat([]byte("v"), 128)

// freeAddr returns a loopback address with a port free right now.
func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
