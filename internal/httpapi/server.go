// Package httpapi serves kvstore's HTTP/JSON API (documented in
// docs/api.md): keys, prefix listing, watch streams, status, snapshots and
// health. It declares the narrow Backend it needs, authenticates every /api
// request with a bearer token, and answers every error as
// application/problem+json through one table (problem.go).
package httpapi

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"kvstore.dev/kvstore/internal/auth"
	"kvstore.dev/kvstore/internal/backend"
	"kvstore.dev/kvstore/internal/store"
	"kvstore.dev/kvstore/wire"
)

// Backend is what the handlers need: writes, read barriers and the cluster
// endpoints go through the write path (backend.WritePath: the Raft node,
// a single node's or a cluster member's, never told apart here), reads go to the
// local store. backend.Node is one.
type Backend interface {
	backend.WritePath
	Get(key string, now time.Time, withValue bool) (store.KeyValue, error)
	List(opts store.ListOptions) (store.ListResult, error)
	Subscribe(prefix string, since uint64, resume bool) ([]store.Event, *store.Subscription, error)
	Status() store.Status
	WriteSnapshot(w io.Writer) (int64, error)
}

// Observer receives one call per request, for metrics.
type Observer interface {
	ObserveRequest(route, method string, code int, d time.Duration)
}

// Options configure a Server.
type Options struct {
	MaxKeyBytes   int
	MaxValueBytes int
	// MaxWatches and MaxWatchesPerToken bound the open watch streams, in
	// all and per token (by name); one more is answered 429
	// too_many_requests. 0 means DefaultMaxWatches, DefaultMaxWatchesPerToken.
	MaxWatches         int
	MaxWatchesPerToken int
	// MaxListPageBytes caps the key, value and content-type bytes of one
	// list page (limits.max_list_page_bytes); 0 means DefaultMaxListPageBytes.
	MaxListPageBytes int64
	// Heartbeat is the interval of comment lines on idle watch streams.
	Heartbeat time.Duration
	// WriteTimeout bounds each write of a long-lived response (watch),
	// which is exempt from the server's whole-response timeout. Snapshot
	// streams have their own bounds (Snapshot).
	WriteTimeout time.Duration
	Version      string
	Logger       *slog.Logger
	Observer     Observer         // may be nil
	Clock        func() time.Time // nil means time.Now
	// Console, if set, serves GET and HEAD requests outside /api/ (the web
	// console's static files); otherwise such paths are 404 problems.
	Console http.Handler

	// Recover, if set, carries out a recovery request that POST
	// /api/v1/cluster/recover checked (recover.go): it records req so that
	// the server recovers at its next start, and has the server exit once
	// the answer is sent; self is this server's status. Its error is
	// answered as any other. Nil: the endpoint answers not_clustered.
	Recover func(req wire.RecoverRequest, self wire.NodeStatus) error

	// Snapshot bounds GET /api/v1/snapshot streams (snapshot.go); zero
	// fields take the defaults of SnapshotLimits.
	Snapshot SnapshotLimits
}

// Server is the API's handler. It is safe for concurrent use.
type Server struct {
	backend Backend
	auth    *auth.Authenticator
	opts    Options
	log     *slog.Logger
	clock   func() time.Time
	started time.Time

	snapshots chan struct{} // one token per running snapshot stream

	watches      watchLimiter
	shutdownOnce sync.Once
	shutdown     chan struct{}
	handler      http.Handler
}

// New returns a Server answering from backend and authenticating with a.
func New(backend Backend, a *auth.Authenticator, opts Options) *Server {
	s := &Server{backend: backend, auth: a, opts: opts, log: opts.Logger, clock: opts.Clock, shutdown: make(chan struct{})}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.opts.Heartbeat <= 0 {
		s.opts.Heartbeat = 15 * time.Second
	}
	if s.opts.MaxWatches <= 0 {
		s.opts.MaxWatches = DefaultMaxWatches
	}
	if s.opts.MaxWatchesPerToken <= 0 {
		s.opts.MaxWatchesPerToken = DefaultMaxWatchesPerToken
	}
	s.watches = watchLimiter{max: s.opts.MaxWatches, perToken: s.opts.MaxWatchesPerToken}
	if s.opts.MaxListPageBytes <= 0 {
		s.opts.MaxListPageBytes = DefaultMaxListPageBytes
	}
	if s.opts.WriteTimeout <= 0 {
		s.opts.WriteTimeout = 30 * time.Second
	}
	s.opts.Snapshot = s.opts.Snapshot.withDefaults()
	s.snapshots = make(chan struct{}, s.opts.Snapshot.MaxConcurrent)
	s.started = s.clock()
	s.handler = s.routes()
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// BeginShutdown makes /readyz fail and ends every watch stream, so that an
// http.Server's Shutdown can drain the remaining requests. Call it from
// http.Server.RegisterOnShutdown.
func (s *Server) BeginShutdown() { s.shutdownOnce.Do(func() { close(s.shutdown) }) }

// handlerFunc is a route's handler; a returned error is written as a
// problem, so every error path ends the handler.
type handlerFunc func(w http.ResponseWriter, r *http.Request, p *auth.Principal) error

type route struct {
	method string
	path   string
	public bool     // no token needed
	query  []string // accepted query parameters
	h      handlerFunc
}

func (s *Server) routeTable() []route {
	return []route{
		{method: "GET", path: wire.PathKV + "/{key...}", query: []string{"consistency"}, h: s.getKey},
		{method: "PUT", path: wire.PathKV + "/{key...}", query: []string{"ttl"}, h: s.putKey},
		{method: "DELETE", path: wire.PathKV + "/{key...}", h: s.deleteKey},
		{method: "GET", path: wire.PathKV, query: []string{"prefix", "limit", "after", "keys_only", "consistency"}, h: s.list},
		{method: "DELETE", path: wire.PathKV, query: []string{"prefix"}, h: s.deletePrefix},
		{method: "GET", path: wire.PathWatch, query: []string{"prefix", "since"}, h: s.watch},
		{method: "GET", path: wire.PathStatus, h: s.status},
		{method: "GET", path: wire.PathSnapshot, h: s.snapshot},
		{method: "GET", path: wire.PathCluster, h: s.clusterStatus},
		{method: "POST", path: wire.PathMembers, h: s.addMember},
		{method: "DELETE", path: wire.PathMembers + "/{id}", h: s.removeMember},
		{method: "POST", path: wire.PathRecover, h: s.recoverCluster},
		{method: "GET", path: wire.PathHealthz, public: true, h: s.healthz},
		{method: "GET", path: wire.PathReadyz, public: true, h: s.readyz},
	}
}

// routes builds the mux: every route wrapped with auth, query checking and
// instrumentation; every path also answers other methods with a 405
// problem listing Allow; anything else is a 404 problem.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	allow := map[string][]string{}
	var paths []string
	for _, rt := range s.routeTable() {
		mux.Handle(rt.method+" "+rt.path, s.wrap(rt))
		if _, ok := allow[rt.path]; !ok {
			paths = append(paths, rt.path)
		}
		allow[rt.path] = append(allow[rt.path], rt.method)
		if rt.method == "GET" {
			allow[rt.path] = append(allow[rt.path], "HEAD")
		}
	}
	for _, p := range paths {
		methods := strings.Join(allow[p], ", ")
		mux.Handle(p, s.wrap(route{path: p, public: true, h: func(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
			w.Header().Set("Allow", methods)
			return errWith(errMethodNotAllowed, "%s is not allowed here; allowed: %s", r.Method, methods)
		}}))
	}
	mux.Handle("/", s.wrap(route{path: "other", public: true, h: func(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
		if s.opts.Console != nil && (r.Method == http.MethodGet || r.Method == http.MethodHead) && !strings.HasPrefix(r.URL.Path, "/api/") {
			s.opts.Console.ServeHTTP(w, r)
			return nil
		}
		return errWith(errRouteNotFound, "no endpoint at %s (the API is under /api/v1/)", truncate(r.URL.Path, 128))
	}}))
	return s.withRequestID(s.refuseUncleanKeys(mux))
}

// refuseUncleanKeys answers key paths that ServeMux would otherwise redirect
// to a cleaned path ("a/../b", "a//b", "a/./b") with invalid_key: a key is
// never silently rewritten.
func (s *Server) refuseUncleanKeys(next http.Handler) http.Handler {
	const prefix = wire.PathKV + "/"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.EscapedPath()
		if strings.HasPrefix(p, prefix) && r.Method != http.MethodConnect {
			clean := path.Clean(p)
			if strings.HasSuffix(p, "/") && clean != "/" {
				clean += "/"
			}
			if clean != p {
				if err := store.ValidateKey(strings.TrimPrefix(r.URL.Path, prefix), s.opts.MaxKeyBytes); err != nil {
					s.writeError(w, r, err)
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// wrap turns a route into an http.Handler: metrics, recovery, query
// parameter checks and authentication, then the handler.
func (s *Server) wrap(rt route) http.Handler {
	label := rt.path
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.ErrorContext(r.Context(), "handler panic", "request_id", requestID(r.Context()), "panic", v)
				if !rec.wrote {
					s.writeError(rec, r, errInternalPanic)
				}
			}
			d := time.Since(start)
			if s.opts.Observer != nil {
				s.opts.Observer.ObserveRequest(label, r.Method, rec.code, d)
			}
			if s.log.Enabled(r.Context(), slog.LevelDebug) { // skip building the record on the hot path
				s.log.DebugContext(r.Context(), "request", "request_id", requestID(r.Context()), "method", r.Method,
					"route", label, "path", r.URL.Path, "proto", r.Proto, "status", rec.code, "bytes", rec.bytes, "duration", d)
			}
		}()
		if err := s.serve(rec, r, rt); err != nil {
			s.writeError(rec, r, err)
		}
	})
}

var errInternalPanic = errors.New("internal panic")

func (s *Server) serve(w http.ResponseWriter, r *http.Request, rt route) error {
	q := r.URL.Query()
	for _, secret := range []string{"token", "access_token", "api_key", "apikey"} {
		if q.Has(secret) {
			return errWith(errInvalidArgument, "credentials are never accepted in the query string; send \"Authorization: Bearer <token>\"")
		}
	}
	for name := range q {
		if !slices.Contains(rt.query, name) {
			return errWith(errInvalidArgument, "unknown query parameter %q", name)
		}
	}
	var p *auth.Principal
	if !rt.public {
		var ok bool
		if p, ok = s.authenticate(r); !ok {
			return errWith(errUnauthorized, "a valid \"Authorization: Bearer <token>\" header is required")
		}
	}
	return rt.h(w, r, p)
}

func (s *Server) authenticate(r *http.Request) (*auth.Principal, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return nil, false
	}
	return s.auth.Authenticate(strings.TrimSpace(token))
}

// statusRecorder remembers the status code and size of a response. It
// forwards Flush and exposes the underlying writer to ResponseController.
type statusRecorder struct {
	http.ResponseWriter
	code  int
	bytes int64
	wrote bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wrote {
		r.code, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wrote = true
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *statusRecorder) Flush() {
	r.wrote = true
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
