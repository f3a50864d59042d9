//go:build kube

package ingress

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"kvstore.dev/kvstore/test/harness"
	"kvstore.dev/kvstore/wire"
)

// dialTo is an HTTP client that connects to addr (an IP) whatever the URL's
// host, keeping the URL's port; so a request for https://<host>/ sends that
// host as SNI and Host header, as a client resolving the host would. It
// verifies certificates against caPEM and does not follow redirects.
func dialTo(t testing.TB, addr string, caPEM []byte) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("no certificate in the CA PEM:\n%s", caPEM)
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, hostPort string) (net.Conn, error) {
			_, port, err := net.SplitHostPort(hostPort)
			if err != nil {
				return nil, err
			}
			return d.DialContext(ctx, network, net.JoinHostPort(addr, port))
		},
		TLSClientConfig:   &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2: true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// apiClient is a harness.Client of base (such as "https://kv.test") through
// hc with token.
func apiClient(base, token string, hc *http.Client) *harness.Client {
	return &harness.Client{URL: base, Token: token, HC: hc, Timeout: 20 * time.Second}
}

// checkKV writes n keys under prefix through c and reads each back at
// once with a linearizable read, also through c.
func checkKV(t *testing.T, c *harness.Client, prefix string, n int) {
	t.Helper()
	for i := range n {
		key, value := fmt.Sprintf("%s%03d", prefix, i), fmt.Sprintf("value-%d-%d", i, time.Now().UnixNano())
		if r := c.Put(key, []byte(value)); !r.OK() {
			t.Fatalf("PUT %s through %s: %v %s", key, c.URL, r, r.Body)
		}
		r := c.Get(key, "linearizable")
		if !r.OK() || string(r.Body) != value {
			t.Fatalf("linearizable GET %s through %s right after the PUT: %v %q, want %q", key, c.URL, r, r.Body, value)
		}
	}
}

// checkRedirect asks for path over plain HTTP at base and wants status with
// a Location on https://<host> and the same path.
func checkRedirect(t *testing.T, hc *http.Client, base, host, path string, status int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("GET %s%s: %v", base, path, err)
	}
	resp.Body.Close()
	if want := "https://" + host + path; resp.StatusCode != status || resp.Header.Get("Location") != want {
		t.Fatalf("GET %s%s: %d, Location %q; want %d to %s (headers %v)", base, path, resp.StatusCode, resp.Header.Get("Location"), status, want, resp.Header)
	}
}

// watchEvent opens a watch of key through c (from the store's revision
// before the write, so no event can be missed), waits for the response
// headers, writes key through put, and waits up to within for the event
// naming key to arrive while the stream stays open. It returns the
// stream's lines seen, for the failure message.
func watchEvent(c, put *harness.Client, key string, within time.Duration) ([]string, error) {
	var st wire.Status
	if err := c.JSON(http.MethodGet, "/api/v1/status", nil, &st); err != nil {
		return nil, fmt.Errorf("status through %s: %w", c.URL, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), within+30*time.Second)
	defer cancel()
	u := c.URL + "/api/v1/watch?prefix=" + url.QueryEscape(key) + "&since=" + strconv.FormatUint(st.Revision, 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.HC.Do(req)
	if err != nil {
		return nil, fmt.Errorf("opening the watch: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return nil, fmt.Errorf("opening the watch: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	lines := make(chan string)
	ended := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
		if err := sc.Err(); err != nil {
			ended <- err
		} else {
			ended <- io.EOF
		}
	}()
	if r := put.Put(key, []byte("watched")); !r.OK() {
		return nil, fmt.Errorf("PUT %s: %v %s", key, r, r.Body)
	}
	timer := time.NewTimer(within)
	defer timer.Stop()
	var seen []string
	want := `"key":"` + key + `"`
	for {
		select {
		case l := <-lines:
			seen = append(seen, l)
			if strings.HasPrefix(l, "data:") && strings.Contains(l, want) {
				return seen, nil
			}
		case err := <-ended:
			return seen, fmt.Errorf("the stream ended (%v) before the event for %s", err, key)
		case <-timer.C:
			return seen, fmt.Errorf("no event for %s within %s, the stream still open", key, within)
		}
	}
}
