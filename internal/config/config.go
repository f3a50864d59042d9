// Package config holds the server's configuration: embedded defaults, then a
// YAML file, then command-line flags and the environment, then Validate,
// which runs before any I/O and names the offending field in every error.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"kvstore.dev/kvstore/internal/auth"
)

// Config is the whole server configuration. Field names are the YAML keys.
type Config struct {
	// Listen is the API's address (host:port).
	Listen string `json:"listen"`
	// API configures the API listener beyond its address: TLS.
	API API `json:"api"`
	// DebugListen is the address of /metrics and pprof; "" disables it.
	DebugListen string `json:"debug_listen"`
	// Pprof serves /debug/pprof on DebugListen. Turn it off when
	// DebugListen is reachable by others (a pod IP scraped for metrics).
	Pprof bool `json:"pprof"`
	// DataDir holds the database and the generated admin token.
	DataDir string      `json:"data_dir"`
	Limits  Limits      `json:"limits"`
	Auth    Auth        `json:"auth"`
	Log     Log         `json:"log"`
	HTTP    HTTP        `json:"http"`
	Watch   Watch       `json:"watch"`
	TTL     TTL         `json:"ttl"`
	Store   StoreTuning `json:"store"`
	Console Console     `json:"console"`
	Cluster Cluster     `json:"cluster"`

	Snapshot Snapshot `json:"snapshot"`
}

// Console says whether the server itself serves the web console (the
// static files embedded in the binary) on paths outside /api/. Behind nginx
// in compose, nginx serves the same files.
type Console struct {
	Enabled bool `json:"enabled"`
}

// Limits bound what clients may store.
type Limits struct {
	MaxKeyBytes   int `json:"max_key_bytes"`
	MaxValueBytes int `json:"max_value_bytes"`
	// MaxListPageBytes caps the key, value and content-type bytes of one
	// page of GET /api/v1/kv (4 MiB by default); a page always holds at
	// least one item, and next is set when the cap cuts it.
	MaxListPageBytes int64 `json:"max_list_page_bytes"`
}

// API configures the API listener.
type API struct {
	TLS APITLS `json:"tls"`
}

// APITLS turns on TLS for the API listener (plain HTTP when CertFile is
// empty). The files are re-read when they change (internal/tlsreload), so a
// renewed certificate needs no restart. The listener speaks TLS 1.2 and 1.3
// with Go's default cipher suites.
type APITLS struct {
	// CertFile and KeyFile are the server's PEM certificate (chain) and
	// key: both or neither.
	CertFile string `json:"cert_file,omitempty"`
	KeyFile  string `json:"key_file,omitempty"`
	// ClientCAFile, when set, is a PEM bundle of CAs: every client must
	// present a certificate one of them issued (bearer tokens are still
	// required). Re-read when it changes too.
	ClientCAFile string `json:"client_ca_file,omitempty"`
}

// Enabled reports whether the API listener serves TLS.
func (t APITLS) Enabled() bool { return t.CertFile != "" }

// Auth lists the accepted tokens. When it lists none (and
// KVSTORE_ADMIN_TOKEN is unset, and TokensFile lists none) the server
// generates an admin token in DataDir on first start.
type Auth struct {
	Tokens []Token `json:"tokens"`
	// TokensFile is a YAML file holding more tokens, as a document
	// "tokens: [...]" whose entries are those of Tokens. The server
	// re-reads it, and every token's token_file, about once a second: a
	// token added is accepted and a token removed refused within seconds,
	// without a restart. A file that fails to read or validate keeps the
	// previous tokens in force (and is logged).
	TokensFile string `json:"tokens_file,omitempty"`
}

// Reloadable reports whether any token lives in a file the server re-reads.
func (a Auth) Reloadable() bool {
	if a.TokensFile != "" {
		return true
	}
	for _, t := range a.Tokens {
		if t.TokenFile != "" {
			return true
		}
	}
	return false
}

// Token is one accepted bearer token: exactly one of Token, TokenFile and
// SHA256 gives its secret.
type Token struct {
	Name      string    `json:"name"`
	Token     string    `json:"token,omitempty"`
	TokenFile string    `json:"token_file,omitempty"`
	SHA256    string    `json:"sha256,omitempty"`
	Role      auth.Role `json:"role"`
	Prefixes  []string  `json:"prefixes,omitempty"`
}

// Log configures structured logging.
type Log struct {
	Level  string `json:"level"`  // debug, info, warn, error
	Format string `json:"format"` // json, text
}

// HTTP holds the API server's timeouts.
type HTTP struct {
	ReadHeaderTimeout Duration `json:"read_header_timeout"`
	ReadTimeout       Duration `json:"read_timeout"`
	WriteTimeout      Duration `json:"write_timeout"`
	IdleTimeout       Duration `json:"idle_timeout"`
	ShutdownTimeout   Duration `json:"shutdown_timeout"`
	MaxHeaderBytes    int      `json:"max_header_bytes"`
	// MaxConnections bounds the open connections of each listener (API and
	// debug; 12 000 by default: 10 000 watches and room for the rest).
	// Past it the listener stops accepting until one closes: a new client
	// waits in the kernel's backlog.
	MaxConnections int `json:"max_connections"`
}

// Watch tunes watch streams.
type Watch struct {
	Heartbeat     Duration `json:"heartbeat"`
	HistoryEvents int      `json:"history_events"`
	HistoryBytes  int64    `json:"history_bytes"`
	// MaxWatches bounds the open watch streams of the server (10 000 by
	// default), MaxWatchesPerToken those of one token (100); one more is
	// answered 429 too_many_requests with Retry-After.
	MaxWatches         int `json:"max_watches"`
	MaxWatchesPerToken int `json:"max_watches_per_token"`
}

// TTL tunes the expiry sweeper.
type TTL struct {
	SweepInterval Duration `json:"sweep_interval"`
}

// StoreTuning tunes the storage engine.
type StoreTuning struct {
	// FlushInterval, FlushMaxKeys and FlushMaxBytes are the flush policy
	// (store.FlushPolicy): the buffered writes go to the bbolt file once
	// the interval has passed, or sooner at that many keys or bytes; past
	// 4 times either limit writers wait for a flush. 0 takes the default
	// (store.DefaultFlushPolicy): 5s, 50000 keys, 64 MiB.
	FlushInterval Duration `json:"flush_interval"`
	FlushMaxKeys  int      `json:"flush_max_keys"`
	FlushMaxBytes int64    `json:"flush_max_bytes"`
}

// Default returns the embedded defaults.
func Default() Config {
	return Config{
		Listen:      ":8080",
		DebugListen: "127.0.0.1:6060",
		Pprof:       true,
		DataDir:     "./data",
		Limits:      Limits{MaxKeyBytes: 1024, MaxValueBytes: 1 << 20, MaxListPageBytes: 4 << 20},
		Log:         Log{Level: "info", Format: "json"},
		HTTP: HTTP{
			ReadHeaderTimeout: Duration(5 * time.Second),
			ReadTimeout:       Duration(60 * time.Second),
			WriteTimeout:      Duration(60 * time.Second),
			IdleTimeout:       Duration(120 * time.Second),
			ShutdownTimeout:   Duration(10 * time.Second),
			MaxHeaderBytes:    64 << 10,
			MaxConnections:    12_000,
		},
		Watch:   Watch{Heartbeat: Duration(15 * time.Second), HistoryEvents: 10_000, HistoryBytes: 64 << 20, MaxWatches: 10_000, MaxWatchesPerToken: 100},
		TTL:     TTL{SweepInterval: Duration(time.Second)},
		Console: Console{Enabled: true},
		Cluster: Cluster{PeerListen: ":7000", HandoffTimeout: Duration(5 * time.Second)},

		Snapshot: defaultSnapshot(),
	}
}

// EnvAdminToken names the environment variable holding an extra admin token.
const EnvAdminToken = "KVSTORE_ADMIN_TOKEN"

// Load builds the configuration from defaults, the file named by --config,
// the other flags in args and the environment (getenv), then validates it.
// It reads only the config file; token files are read later by Principals
// and TLS files by the server.
func Load(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	fs := flag.NewFlagSet("kvstore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		file                                              string
		listen, debugListen, dataDir, logLevel, logFormat string
	)
	fs.StringVar(&file, "config", "", "YAML configuration `file`")
	fs.StringVar(&listen, "listen", "", "API address, host:port (default \":8080\")")
	fs.StringVar(&debugListen, "debug-listen", "", "metrics and pprof address; \"off\" disables (default \"127.0.0.1:6060\")")
	fs.StringVar(&dataDir, "data-dir", "", "data directory (default \"./data\")")
	fs.StringVar(&logLevel, "log-level", "", "debug, info, warn or error (default \"info\")")
	fs.StringVar(&logFormat, "log-format", "", "json or text (default \"json\")")
	var tlsCert, tlsKey, tlsClientCA, tokensFile string
	fs.StringVar(&tlsCert, "tls-cert-file", "", "API TLS certificate `file` (PEM); with --tls-key-file the API serves HTTPS (api.tls.cert_file)")
	fs.StringVar(&tlsKey, "tls-key-file", "", "API TLS key `file` (PEM) (api.tls.key_file)")
	fs.StringVar(&tlsClientCA, "tls-client-ca-file", "", "CA bundle `file`: API clients must present a certificate it issued (api.tls.client_ca_file)")
	fs.StringVar(&tokensFile, "tokens-file", "", "YAML `file` of more tokens, re-read while running (auth.tokens_file)")
	var nodeID, peerListen, peerAdvertise, bootstrapNode, bootstrapAllowedFile, join, joinAs string
	fs.StringVar(&nodeID, "node-id", "", "cluster mode: this node's id (default: the host name); setting any cluster flag enables cluster mode")
	fs.StringVar(&peerListen, "peer-listen", "", "cluster mode: peer address (default \":7000\")")
	fs.StringVar(&peerAdvertise, "peer-advertise", "", "cluster mode: peer address other nodes use (default: node-id:port)")
	fs.StringVar(&bootstrapNode, "bootstrap-node", "", "cluster mode: the node id that may start a new cluster")
	fs.StringVar(&bootstrapAllowedFile, "bootstrap-allowed-file", "", "cluster mode: a `file` that must say \"true\" when the bootstrap node finds no cluster, for it to start one (cluster.bootstrap_allowed_file)")
	fs.StringVar(&join, "join", "", "cluster mode: comma-separated peer addresses to join")
	fs.StringVar(&joinAs, "join-as", "", "cluster mode: join as a voter (default) or nonvoter")
	var clusterName, peerTLSCert, peerTLSKey, peerTLSCA, peerTokenFile string
	fs.StringVar(&peerTokenFile, "peer-token-file", "", "cluster mode: `file` of peer tokens, one per line, the first signing; re-read while running (cluster.peer_token_file; "+EnvPeerToken+" overrides it)")
	fs.StringVar(&clusterName, "cluster-name", "", "cluster mode: the cluster name peer certificates carry (default: the one in --peer-tls-cert)")
	fs.StringVar(&peerTLSCert, "peer-tls-cert", "", "cluster mode: this node's peer certificate `file`; with --peer-tls-key and --peer-tls-ca, mutual TLS on the peer port")
	fs.StringVar(&peerTLSKey, "peer-tls-key", "", "cluster mode: the key `file` of --peer-tls-cert")
	fs.StringVar(&peerTLSCA, "peer-tls-ca", "", "cluster mode: the `file` of CA certificates whose peer certificates are accepted")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg := Default()
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return Config{}, fmt.Errorf("--config: %w", err)
		}
		if err := Parse(b, &cfg); err != nil {
			return Config{}, fmt.Errorf("%s: %w", file, err)
		}
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "listen":
			cfg.Listen = listen
		case "debug-listen":
			cfg.DebugListen = debugListen
			if debugListen == "off" {
				cfg.DebugListen = ""
			}
		case "data-dir":
			cfg.DataDir = dataDir
		case "log-level":
			cfg.Log.Level = logLevel
		case "log-format":
			cfg.Log.Format = logFormat
		case "tls-cert-file":
			cfg.API.TLS.CertFile = tlsCert
		case "tls-key-file":
			cfg.API.TLS.KeyFile = tlsKey
		case "tls-client-ca-file":
			cfg.API.TLS.ClientCAFile = tlsClientCA
		case "tokens-file":
			cfg.Auth.TokensFile = tokensFile
		case "node-id":
			cfg.Cluster.Enabled, cfg.Cluster.NodeID = true, nodeID
		case "peer-listen":
			cfg.Cluster.Enabled, cfg.Cluster.PeerListen = true, peerListen
		case "peer-advertise":
			cfg.Cluster.Enabled, cfg.Cluster.PeerAdvertise = true, peerAdvertise
		case "bootstrap-node":
			cfg.Cluster.Enabled, cfg.Cluster.BootstrapNode = true, bootstrapNode
		case "bootstrap-allowed-file":
			cfg.Cluster.Enabled, cfg.Cluster.BootstrapAllowedFile = true, bootstrapAllowedFile
		case "join":
			cfg.Cluster.Enabled, cfg.Cluster.Join = true, strings.Split(join, ",")
		case "join-as":
			cfg.Cluster.Enabled, cfg.Cluster.JoinAs = true, joinAs
		case "cluster-name":
			cfg.Cluster.Enabled, cfg.Cluster.Name = true, clusterName
		case "peer-tls-cert":
			cfg.Cluster.Enabled, cfg.Cluster.PeerTLSCert = true, peerTLSCert
		case "peer-tls-key":
			cfg.Cluster.Enabled, cfg.Cluster.PeerTLSKey = true, peerTLSKey
		case "peer-tls-ca":
			cfg.Cluster.Enabled, cfg.Cluster.PeerTLSCA = true, peerTLSCA
		case "peer-token-file":
			cfg.Cluster.Enabled, cfg.Cluster.PeerTokenFile = true, peerTokenFile
		}
	})
	if err := cfg.Cluster.resolve(getenv); err != nil {
		return Config{}, err
	}
	if tok := getenv(EnvAdminToken); tok != "" {
		cfg.Auth.Tokens = append(cfg.Auth.Tokens, Token{Name: "env:" + EnvAdminToken, Token: tok, Role: auth.RoleAdmin})
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Parse overlays the YAML document b on cfg. Unknown keys are errors.
func Parse(b []byte, cfg *Config) error {
	return parseStrict(b, cfg, refuseRemoved)
}

// parseStrict overlays the YAML document b on v, refusing unknown keys and,
// when check is not nil, what check refuses in the document's JSON form.
func parseStrict(b []byte, v any, check ...func([]byte) error) error {
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		return fmt.Errorf("parse YAML: %w", err)
	}
	if bytes.Equal(bytes.TrimSpace(j), []byte("null")) {
		return nil
	}
	for _, c := range check {
		if err := c(j); err != nil {
			return err
		}
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("field %s: expected %s, got %s", te.Field, te.Type, te.Value)
		}
		return fmt.Errorf("parse: %w", err)
	}
	return nil
}

// Duration is a time.Duration written as a Go duration string ("30s").
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalJSON accepts "1m30s"-style strings.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"30s\", got %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q (use e.g. \"500ms\", \"30s\", \"1h\")", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(strconv.Quote(time.Duration(d).String())), nil
}

func validAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	_ = host
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("%q: port must be 0..65535", addr)
	}
	return nil
}

// removedFields are keys that no longer mean anything, by section, with
// what happened to them: a file that sets one is refused with that.
var removedFields = map[string]map[string]string{
	"store": {"max_batch": "removed with the single-node write-ahead log whose group commits it capped " +
		"(a single node runs as a one-server Raft cluster, whose leader batches writes by itself); delete the line"},
}

// refuseRemoved names the first removed field the JSON document j sets.
func refuseRemoved(j []byte) error {
	var doc map[string]json.RawMessage
	if json.Unmarshal(j, &doc) != nil {
		return nil // not an object: the decoder says why
	}
	for section, fields := range removedFields {
		var sec map[string]json.RawMessage
		if json.Unmarshal(doc[section], &sec) != nil {
			continue
		}
		for field, why := range fields {
			if _, ok := sec[field]; ok {
				return fmt.Errorf("%s.%s: %s", section, field, why)
			}
		}
	}
	return nil
}
