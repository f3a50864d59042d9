package server

import (
	"bufio"
	"net"
	"net/http"
	"testing"
	"time"

	"kvstore.dev/kvstore/internal/config"
)

// healthz sends one keep-alive request on conn and reads the answer, within
// deadline.
func healthz(conn net.Conn, deadline time.Time) (*http.Response, error) {
	conn.SetDeadline(deadline)
	if _, err := conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err == nil {
		resp.Body.Close()
	}
	return resp, err
}

// TestConnectionLimit: with http.max_connections open, the next connection
// is not served until one of them closes, then it is.
func TestConnectionLimit(t *testing.T) {
	r := start(t, func(c *config.Config) {
		c.HTTP.MaxConnections, c.Watch.MaxWatches, c.Watch.MaxWatchesPerToken = 2, 1, 1
	})
	var open []net.Conn
	for range 2 {
		conn, err := net.Dial("tcp", r.api)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if resp, err := healthz(conn, time.Now().Add(10*time.Second)); err != nil || resp.StatusCode != 200 {
			t.Fatalf("a connection within the limit: %v, %v", resp, err)
		}
		open = append(open, conn)
	}
	extra, err := net.Dial("tcp", r.api) // completes in the kernel's backlog
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	// Not served while the limit is reached. (A slow server could only make
	// this pass wrongly, never fail wrongly.)
	if resp, err := healthz(extra, time.Now().Add(300*time.Millisecond)); err == nil {
		t.Fatalf("the connection past the limit was served: %d", resp.StatusCode)
	}
	open[0].Close()
	// The request already sent is answered once a slot frees.
	extra.SetDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(extra), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after a connection closed: %v, %v", resp, err)
	}
}
