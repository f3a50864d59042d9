package config

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Hard ceilings on limits: bbolt keys are at most 32768 bytes and the TTL
// index prefixes the key with 8 bytes.
const (
	MaxKeyBytesCeiling   = 32<<10 - 64
	MaxValueBytesCeiling = 256 << 20
	minTokenLength       = 16
)

// Validate checks every field and returns all problems found, each naming
// its field and what is allowed. It writes nothing; the only files it reads
// are the peer TLS files (cluster.peer_tls_*), which must parse.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if err := validAddr(c.Listen); err != nil {
		bad("listen", "%v", err)
	}
	if c.DebugListen != "" {
		if err := validAddr(c.DebugListen); err != nil {
			bad("debug_listen", "%v", err)
		}
	}
	if strings.TrimSpace(c.DataDir) == "" {
		bad("data_dir", "must not be empty")
	}
	if c.Limits.MaxKeyBytes < 1 || c.Limits.MaxKeyBytes > MaxKeyBytesCeiling {
		bad("limits.max_key_bytes", "%d is out of range 1..%d", c.Limits.MaxKeyBytes, MaxKeyBytesCeiling)
	}
	if c.Limits.MaxValueBytes < 0 || c.Limits.MaxValueBytes > MaxValueBytesCeiling {
		bad("limits.max_value_bytes", "%d is out of range 0..%d", c.Limits.MaxValueBytes, MaxValueBytesCeiling)
	}
	if c.Limits.MaxListPageBytes < 1<<10 || c.Limits.MaxListPageBytes > 1<<30 {
		bad("limits.max_list_page_bytes", "%d is out of range 1024..1073741824", c.Limits.MaxListPageBytes)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		bad("log.format", "%q is not one of json, text", c.Log.Format)
	}
	for _, d := range []struct {
		name string
		d    Duration
	}{
		{"http.read_header_timeout", c.HTTP.ReadHeaderTimeout},
		{"http.read_timeout", c.HTTP.ReadTimeout},
		{"http.write_timeout", c.HTTP.WriteTimeout},
		{"http.idle_timeout", c.HTTP.IdleTimeout},
		{"http.shutdown_timeout", c.HTTP.ShutdownTimeout},
		{"watch.heartbeat", c.Watch.Heartbeat},
		{"ttl.sweep_interval", c.TTL.SweepInterval},
	} {
		if v := d.d.D(); v <= 0 || v > 24*time.Hour {
			bad(d.name, "%s is out of range (0s, 24h]", v)
		}
	}
	if c.HTTP.MaxHeaderBytes < 4096 || c.HTTP.MaxHeaderBytes > 1<<20 {
		bad("http.max_header_bytes", "%d is out of range 4096..1048576", c.HTTP.MaxHeaderBytes)
	}
	c.Cluster.validate(bad)
	c.Snapshot.validate(bad)
	if c.Watch.HistoryEvents < 1 {
		bad("watch.history_events", "must be at least 1")
	}
	if c.Watch.HistoryBytes < 1<<20 {
		bad("watch.history_bytes", "must be at least 1048576")
	}
	if c.Watch.MaxWatches < 1 || c.Watch.MaxWatches > 1_000_000 {
		bad("watch.max_watches", "%d is out of range 1..1000000", c.Watch.MaxWatches)
	}
	if c.Watch.MaxWatchesPerToken < 1 || c.Watch.MaxWatchesPerToken > c.Watch.MaxWatches {
		bad("watch.max_watches_per_token", "%d is out of range 1..watch.max_watches (%d)", c.Watch.MaxWatchesPerToken, c.Watch.MaxWatches)
	}
	if c.HTTP.MaxConnections <= c.Watch.MaxWatches || c.HTTP.MaxConnections > 10_000_000 {
		bad("http.max_connections", "%d is out of range: more than watch.max_watches (%d, so watches leave connections for other requests) and at most 10000000", c.HTTP.MaxConnections, c.Watch.MaxWatches)
	}
	if d := c.Store.FlushInterval.D(); d < 0 || d > time.Hour {
		bad("store.flush_interval", "%v is out of range 0 (the default)..1h", d)
	}
	if n := c.Store.FlushMaxKeys; n < 0 || n > 10_000_000 {
		bad("store.flush_max_keys", "%d is out of range 0 (the default)..10000000", n)
	}
	if n := c.Store.FlushMaxBytes; n < 0 || n > 16<<30 {
		bad("store.flush_max_bytes", "%d is out of range 0 (the default)..17179869184 (16 GiB)", n)
	}
	validateTokens("auth.tokens", c.Auth.Tokens, map[string]bool{}, bad)
	c.API.TLS.validate(bad)
	return errors.Join(errs...)
}
