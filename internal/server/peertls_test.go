package server

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"kvstore.dev/kvstore/internal/certs"
	"kvstore.dev/kvstore/internal/config"
	"kvstore.dev/kvstore/internal/testlog"
)

// TestClusterPeerTLSWiring: a cluster node started from the config's peer
// TLS fields serves mutual TLS on its peer port (and says so), and one
// without them warns, once, that peer traffic is unencrypted.
func TestClusterPeerTLSWiring(t *testing.T) {
	t.Parallel()
	free := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}
	dir := t.TempDir()
	crt, key, err := certs.WritePeer(dir, "prod", "kv-0", []string{"127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		tls      bool
		want     string
		dontWant string
	}{
		"mtls":  {tls: true, want: `msg="peer port: mutual TLS 1.3" component=cluster cluster=prod`, dontWant: "NOT encrypted"},
		"token": {want: "peer traffic is NOT encrypted", dontWant: "mutual TLS 1.3\""},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := config.Default()
			cfg.Listen, cfg.DataDir, cfg.DebugListen = free(), t.TempDir(), ""
			cfg.Log.Format = "text"
			cfg.Cluster = config.Cluster{Enabled: true, NodeID: "kv-0", PeerListen: free(), BootstrapNode: "kv-0", PeerToken: strings.Repeat("p", 32)}
			cfg.Cluster.PeerAdvertise = cfg.Cluster.PeerListen
			if tc.tls {
				cfg.Cluster.PeerTLSCert, cfg.Cluster.PeerTLSKey, cfg.Cluster.PeerTLSCA = crt, key, dir+"/"+certs.CACertFile
			}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			logs := &testlog.Buffer{}
			done := make(chan error, 1)
			go func() { done <- Run(ctx, cfg, NewLogger(cfg.Log, logs), nil) }()
			defer func() {
				cancel()
				select {
				case <-done:
				case <-time.After(20 * time.Second):
					t.Errorf("Run did not return after cancel\n%s", logs)
				}
			}()
			deadline := time.Now().Add(20 * time.Second)
			for {
				resp, err := http.Get("http://" + cfg.Listen + "/readyz")
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode == 200 {
						break
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("not ready: %v\n%s", err, logs)
				}
				<-time.After(25 * time.Millisecond)
			}
			if got := logs.String(); strings.Count(got, tc.want) != 1 || strings.Contains(got, tc.dontWant) {
				t.Errorf("logs, want %q once and no %q:\n%s", tc.want, tc.dontWant, got)
			}
		})
	}
}
