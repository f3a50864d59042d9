package backup

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"kvstore.dev/kvstore/wire"
)

// Source takes snapshots from a kvstore server over its API
// (GET /api/v1/snapshot, admin only).
type Source struct {
	// URL is the server's base URL.
	URL string
	// Token returns the admin token, read at every snapshot.
	Token func() (string, error)
	// Client sends the requests; it must not have a whole-response
	// timeout (a snapshot streams as long as it needs).
	Client *http.Client
	// MaxBusyRetries is how often a 429 (the server's snapshot streams
	// are all taken) is retried, after its Retry-After.
	MaxBusyRetries int
}

// NewSourceClient returns the HTTP client of a Source: TLS 1.2+, verified
// against caFile when set (else the system roots).
func NewSourceClient(caFile string) (*http.Client, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("server_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("server_ca_file: %s holds no PEM certificate", caFile)
		}
		cfg.RootCAs = pool
	}
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:       cfg,
		Proxy:                 http.ProxyFromEnvironment,
		ResponseHeaderTimeout: time.Minute,
		TLSHandshakeTimeout:   10 * time.Second,
		IdleConnTimeout:       time.Minute,
	}}, nil
}

// Snapshot starts a snapshot stream. The caller reads the body to its end
// (a truncated stream is an error from Read, not EOF) and closes it. Info
// carries the revision from the response's Content-Disposition and the
// server's version from GET /api/v1/status.
func (s *Source) Snapshot(ctx context.Context) (io.ReadCloser, Info, error) {
	token, err := s.Token()
	if err != nil {
		return nil, Info{}, err
	}
	info := Info{Source: s.URL}
	var st wire.Status
	if err := s.getJSON(ctx, token, wire.PathStatus, &st); err != nil {
		return nil, Info{}, err
	}
	info.ServerVersion = st.Version
	for attempt := 0; ; attempt++ {
		resp, err := s.do(ctx, token, wire.PathSnapshot)
		if err != nil {
			return nil, Info{}, err
		}
		if resp.StatusCode == http.StatusOK {
			info.Revision = revisionOf(resp.Header.Get("Content-Disposition"))
			return resp.Body, info, nil
		}
		p := wire.ReadProblem(resp)
		resp.Body.Close()
		if resp.StatusCode != http.StatusTooManyRequests || attempt >= s.MaxBusyRetries {
			return nil, Info{}, fmt.Errorf("GET %s%s: %w", s.URL, wire.PathSnapshot, p)
		}
		wait := time.Second
		if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && n > 0 && n < 60 {
			wait = time.Duration(n) * time.Second
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, Info{}, fmt.Errorf("GET %s%s: busy (%v), then %w", s.URL, wire.PathSnapshot, p, ctx.Err())
		case <-t.C:
		}
	}
}

// revisionOf reads the revision from `attachment; filename="kvstore-9.db"`
// (0 when it is not there).
func revisionOf(disposition string) uint64 {
	_, params, err := mime.ParseMediaType(disposition)
	if err != nil {
		return 0
	}
	num, ok := strings.CutPrefix(strings.TrimSuffix(params["filename"], ".db"), "kvstore-")
	if !ok {
		return 0
	}
	rev, _ := strconv.ParseUint(num, 10, 64)
	return rev
}

func (s *Source) do(ctx context.Context, token, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(s.URL, "/")+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := s.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s%s: %w", s.URL, path, err)
	}
	return resp, nil
}

func (s *Source) getJSON(ctx context.Context, token, path string, out any) error {
	resp, err := s.do(ctx, token, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s%s: %w", s.URL, path, wire.ReadProblem(resp))
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out); err != nil {
		return fmt.Errorf("GET %s%s: %w", s.URL, path, err)
	}
	return nil
}
