package proc

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// Probe reports whether a process is ready: nil when it is, else why not.
// It must return by ctx's deadline.
type Probe func(ctx context.Context) error

// HTTP returns a probe that expects 200 from a GET of url.
func HTTP(url string) Probe {
	return HTTPCheck(url, func(*http.Response) error { return nil })
}

// HTTPCheck returns a probe that GETs url and passes when the answer is
// 200 and check accepts it (check may read up to 4 KiB of the body).
func HTTPCheck(url string, check func(*http.Response) error) Probe {
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("build probe: %w", err)
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("probe %s: %w", url, err)
		}
		defer resp.Body.Close()
		resp.Body = io.NopCloser(io.LimitReader(resp.Body, 4096))
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("probe %s: status %s", url, resp.Status)
		}
		if err := check(resp); err != nil {
			return fmt.Errorf("probe %s: %w", url, err)
		}
		return nil
	}
}

// TCP returns a probe that passes once addr accepts a connection.
func TCP(addr string) Probe {
	return func(ctx context.Context) error {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("probe %s: %w", addr, err)
		}
		return c.Close()
	}
}

// Poll calls f until it returns nil, ctx ends or timeout passes, each
// call bounded by 2s and 50ms after the last failed one; on timeout it
// returns f's last error.
func Poll(ctx context.Context, timeout time.Duration, f func(context.Context) error) error {
	if last, _ := poll(ctx, timeout, 2*time.Second, nil, f); last != nil {
		return fmt.Errorf("after %v: %w", timeout, last)
	}
	return nil
}

// poll calls f until it returns nil, ctx ends, timeout passes or stop is
// closed (then stopped is true), each call bounded by each and 50ms after
// the last failed one. It returns f's last error.
func poll(ctx context.Context, timeout, each time.Duration, stop <-chan struct{}, f func(context.Context) error) (last error, stopped bool) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		fctx, fcancel := context.WithTimeout(ctx, each)
		last = f(fctx)
		fcancel()
		if last == nil {
			return nil, false
		}
		select {
		case <-stop:
			return last, true
		case <-ctx.Done():
			return last, false
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// FreeAddrs returns n different loopback host:port addresses that were
// free a moment ago.
func FreeAddrs(n int) ([]string, error) {
	out := make([]string, n)
	for i := range out {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find free port: %w", err)
		}
		defer l.Close() // held until all are picked, so they differ
		out[i] = l.Addr().String()
	}
	return out, nil
}
