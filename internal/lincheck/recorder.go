package lincheck

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Config describes a recording.
type Config struct {
	// Endpoints are the base URLs of the servers, such as
	// "http://127.0.0.1:8080" (no trailing /api/...). Each operation goes
	// to one chosen at random, so operations on one key are served by
	// different nodes.
	Endpoints []string
	// Token is the bearer token sent with every request; it must be allowed
	// to read and write the keys under KeyPrefix.
	Token string
	// Clients is the number of concurrent clients (default 4). Each client
	// runs one operation at a time.
	Clients int
	// Keys is the number of distinct keys (default 5); few keys make
	// operations contend.
	Keys int
	// KeyPrefix is prepended as is to the key names k0, k1, ... The default
	// is "lincheck/<random hex>/", so keys are new and absent at the start,
	// as the model assumes.
	KeyPrefix string
	// OpsPerClient and Duration bound the run: it ends when each client has
	// done OpsPerClient operations or Duration has passed, whichever comes
	// first (a zero bound does not apply). Both zero means 100 operations
	// per client.
	OpsPerClient int
	Duration     time.Duration
	// Seed makes the choice of operations, keys and endpoints repeatable.
	Seed int64
	// Client sends the requests; nil means a client with a connection
	// pool sized for Clients.
	Client *http.Client
	// RequestTimeout bounds each request (default 10s). A write that times
	// out is recorded with an unknown outcome.
	RequestTimeout time.Duration
	// Consistency, when not empty, is sent as ?consistency=... on every
	// read: "linearizable", "leader" or "stale". Leave it empty for a
	// server that does not know the parameter (it refuses unknown query
	// parameters with 400).
	Consistency string
	// TTL, when not zero, is sent as ?ttl= with half of the writes (puts,
	// creates and compare-and-swaps), so that keys expire during the run.
	TTL time.Duration
}

// Operation mix, in percent: the rest are deletes.
const (
	pctGet = 40
	pctPut = 20
	pctCAS = 20 // a create when the client knows no revision of the key
)

func (cfg *Config) normalize() error {
	if len(cfg.Endpoints) == 0 {
		return errors.New("lincheck: no endpoints")
	}
	for i, ep := range cfg.Endpoints {
		if !strings.HasPrefix(ep, "http://") && !strings.HasPrefix(ep, "https://") {
			return fmt.Errorf("lincheck: endpoint %q is not an http(s) base URL", ep)
		}
		cfg.Endpoints[i] = strings.TrimSuffix(ep, "/")
	}
	switch cfg.Consistency {
	case "", "linearizable", "leader", "stale":
	default:
		return fmt.Errorf("lincheck: unknown consistency %q", cfg.Consistency)
	}
	if cfg.Clients <= 0 {
		cfg.Clients = 4
	}
	if cfg.Keys <= 0 {
		cfg.Keys = 5
	}
	if cfg.KeyPrefix == "" {
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		cfg.KeyPrefix = "lincheck/" + hex.EncodeToString(b) + "/"
	}
	if cfg.OpsPerClient <= 0 && cfg.Duration <= 0 {
		cfg.OpsPerClient = 100
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	return nil
}

// Run records a history: cfg.Clients clients each run a random mix of
// get, put, create, compare-and-swap and delete on cfg.Keys keys against
// random endpoints. Before that it asks every endpoint for its status, to
// refuse a wrong URL or token early (an endpoint that does not answer is
// not an error: it may be down on purpose).
//
// An answer outside the API's contract for the operation (a 400, 401 or
// 403, a 2xx without its revision) stops the run with an error. Run
// returns the history recorded so far in every case; a cancelled ctx ends
// the run early with ctx's error, the writes in flight recorded with an
// unknown outcome.
func Run(ctx context.Context, cfg Config) (History, error) {
	cfg.Endpoints = append([]string(nil), cfg.Endpoints...)
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	hc := cfg.Client
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = cfg.Clients
		defer tr.CloseIdleConnections()
		hc = &http.Client{Transport: tr}
	}
	for _, ep := range cfg.Endpoints {
		if err := preflight(ctx, hc, ep, cfg.Token, cfg.RequestTimeout); err != nil {
			return nil, err
		}
	}
	keys := make([]string, cfg.Keys)
	for i := range keys {
		keys[i] = cfg.KeyPrefix + "k" + strconv.Itoa(i)
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	start := time.Now()
	var deadline time.Time
	if cfg.Duration > 0 {
		deadline = start.Add(cfg.Duration)
	}
	clients := make([]*client, cfg.Clients)
	var wg sync.WaitGroup
	for i := range clients {
		c := &client{
			id: i, cfg: &cfg, http: hc, keys: keys, start: start,
			rng:   mathrand.New(mathrand.NewPCG(uint64(cfg.Seed), uint64(i))),
			known: map[string]seen{},
		}
		clients[i] = c
		wg.Go(func() {
			if err := c.run(ctx, deadline); err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()

	var h History
	for _, c := range clients {
		h = append(h, c.ops...)
	}
	sortByCall(h)
	return h, context.Cause(ctx)
}

// seen is what a client last learnt about a key: a revision, or that it
// was absent. The zero value: nothing.
type seen struct {
	rev    uint64
	absent bool
}

type client struct {
	id    int
	cfg   *Config
	http  *http.Client
	keys  []string
	start time.Time
	rng   *mathrand.Rand
	known map[string]seen
	seq   int
	ops   History
}

func (c *client) now() int64 { return int64(time.Since(c.start)) }

func (c *client) run(ctx context.Context, deadline time.Time) error {
	for i := 0; c.cfg.OpsPerClient <= 0 || i < c.cfg.OpsPerClient; i++ {
		if ctx.Err() != nil || (!deadline.IsZero() && !time.Now().Before(deadline)) {
			return nil
		}
		in := c.next()
		endpoint := c.cfg.Endpoints[c.rng.IntN(len(c.cfg.Endpoints))]
		op, err := c.do(ctx, endpoint, in)
		c.ops = append(c.ops, op)
		if err != nil {
			return err
		}
		c.learn(op)
	}
	return nil
}

// next picks the client's next operation. Compare-and-swap uses the
// revision the client last saw for the key; each write's value is unique
// in the run, so a read names the write it reads from.
func (c *client) next() Input {
	key := c.keys[c.rng.IntN(len(c.keys))]
	k := c.known[key]
	r := c.rng.IntN(100)
	if r < pctGet {
		return Input{Kind: Get, Key: key}
	}
	c.seq++
	value := fmt.Sprintf("c%d-%d", c.id, c.seq)
	var ttl time.Duration
	if c.cfg.TTL > 0 && c.rng.IntN(2) == 0 {
		ttl = c.cfg.TTL
	}
	switch {
	case r < pctGet+pctPut:
		return Input{Kind: Put, Key: key, Value: value, TTL: ttl}
	case r < pctGet+pctPut+pctCAS && k.rev != 0:
		return Input{Kind: CAS, Key: key, Value: value, IfRevision: k.rev, TTL: ttl}
	case r < pctGet+pctPut+pctCAS:
		return Input{Kind: Create, Key: key, Value: value, TTL: ttl}
	case k.rev != 0 && c.rng.IntN(2) == 0:
		return Input{Kind: Delete, Key: key, IfRevision: k.rev}
	}
	return Input{Kind: Delete, Key: key}
}

// learn updates what the client knows of the key from op's outcome.
func (c *client) learn(op Operation) {
	key, out := op.Input.Key, op.Output
	switch {
	case out.Result == Failed:
	case out.Result == Unknown || out.Result == PreconditionFailed:
		delete(c.known, key)
	case op.Input.Kind == Delete || out.Result == NotFound:
		c.known[key] = seen{absent: true}
	default:
		c.known[key] = seen{rev: out.Revision}
	}
}
