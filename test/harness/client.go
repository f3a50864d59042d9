package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"kvstore.dev/kvstore/wire"
)

// Client speaks a server's HTTP API with a token. It is safe for
// concurrent use; its fields must not change once it is in use.
type Client struct {
	URL     string // "http://127.0.0.1:PORT"
	Token   string // sent as "Authorization: Bearer"; empty sends none
	HC      *http.Client
	Timeout time.Duration // of each request; 0 means 10s
}

// NewClient returns a Client of url with its own connection pool, closed
// when the test ends.
func NewClient(t testing.TB, url, token string) *Client {
	tr := &http.Transport{
		Proxy:               nil, // traffic goes to 127.0.0.1 only
		MaxIdleConnsPerHost: 16,
		DisableCompression:  true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &Client{URL: url, Token: token, HC: &http.Client{Transport: tr}}
}

// WithTimeout is a copy of c whose requests time out after d.
func (c *Client) WithTimeout(d time.Duration) *Client {
	cc := *c
	cc.Timeout = d
	return &cc
}

// CloseIdle closes the client's idle connections.
func (c *Client) CloseIdle() { c.HC.CloseIdleConnections() }

// Reply is what one request got: an answer, or Err when none arrived (for
// a write: its outcome is unknown).
type Reply struct {
	Status  int
	Header  http.Header
	Body    []byte
	Problem *wire.Problem // decoded with wire.ReadProblem when Status >= 400
	Took    time.Duration
	Err     error
}

// OK reports a 2xx answer.
func (r Reply) OK() bool { return r.Err == nil && r.Status/100 == 2 }

// Code is the problem's code, "" without one.
func (r Reply) Code() string {
	if r.Problem == nil {
		return ""
	}
	return r.Problem.Code
}

func (r Reply) String() string {
	if r.Err != nil {
		return fmt.Sprintf("error after %s: %v", r.Took.Round(time.Millisecond), r.Err)
	}
	return fmt.Sprintf("%d %s after %s", r.Status, r.Code(), r.Took.Round(time.Millisecond))
}

// Do sends one request; header holds name, value pairs.
func (c *Client) Do(method, path string, body []byte, header ...string) Reply {
	return c.DoContext(context.Background(), method, path, body, header...)
}

// DoContext is Do with a context.
func (c *Client) DoContext(ctx context.Context, method, path string, body []byte, header ...string) Reply {
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.URL+path, rd)
	if err != nil {
		return Reply{Err: err}
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	start := time.Now()
	resp, err := c.HC.Do(req)
	if err != nil {
		return Reply{Err: err, Took: time.Since(start)}
	}
	defer resp.Body.Close()
	r := Reply{Status: resp.StatusCode, Header: resp.Header}
	// A body cut short still comes with its status: the server answered.
	r.Body, r.Err = io.ReadAll(resp.Body)
	r.Took = time.Since(start)
	if r.Err != nil {
		r.Err = fmt.Errorf("%s %s: reading body: %w", method, path, r.Err)
	}
	if r.Status >= 400 {
		r.Problem = wire.ReadProblem(&http.Response{StatusCode: r.Status, Body: io.NopCloser(bytes.NewReader(r.Body))})
	}
	return r
}

// Put writes value under key (header: name, value pairs).
func (c *Client) Put(key string, value []byte, header ...string) Reply {
	return c.Do(http.MethodPut, wire.KeyPath(key), value, header...)
}

// Get reads key, with ?consistency=level unless level is empty.
func (c *Client) Get(key, level string) Reply {
	path := wire.KeyPath(key)
	if level != "" {
		path += "?consistency=" + level
	}
	return c.Do(http.MethodGet, path, nil)
}

// JSON sends in (nil: no body) as JSON and decodes a 200 answer into out
// (nil: discarded); any other answer is an error, wrapping its
// *wire.Problem if it has one.
func (c *Client) JSON(method, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	r := c.Do(method, path, body, "Content-Type", "application/json")
	switch {
	case r.Err != nil:
		return r.Err
	case r.Problem != nil:
		return fmt.Errorf("%s %s: %w", method, path, r.Problem)
	case r.Status != http.StatusOK:
		return fmt.Errorf("%s %s: %d, want 200", method, path, r.Status)
	case out == nil:
		return nil
	}
	if err := json.Unmarshal(r.Body, out); err != nil {
		return fmt.Errorf("%s %s: decoding %.200q: %w", method, path, r.Body, err)
	}
	return nil
}

// ClusterStatus is GET /api/v1/cluster.
func (c *Client) ClusterStatus() (wire.ClusterStatus, error) {
	var st wire.ClusterStatus
	err := c.JSON(http.MethodGet, wire.PathCluster, nil, &st)
	return st, err
}

// AdminStatus is GET /api/v1/status with an admin token.
func (c *Client) AdminStatus() (wire.AdminStatus, error) {
	var st wire.AdminStatus
	err := c.JSON(http.MethodGet, wire.PathStatus, nil, &st)
	return st, err
}

// AddMember adds (or promotes) a member: POST /api/v1/cluster/members.
func (c *Client) AddMember(id, address string, voter bool) error {
	return c.JSON(http.MethodPost, wire.PathMembers, wire.AddMemberRequest{ID: id, Address: address, Voter: &voter}, nil)
}

// RemoveMember removes a member: DELETE /api/v1/cluster/members/{id}.
func (c *Client) RemoveMember(id string) error {
	return c.JSON(http.MethodDelete, wire.MemberPath(id), nil, nil)
}

// Suffrage is id's suffrage in st, "" when it is not a member.
func Suffrage(st wire.ClusterStatus, id string) string {
	for _, m := range st.Members {
		if m.ID == id {
			return m.Suffrage
		}
	}
	return ""
}

// ReportProblems fails the test with at most 20 of problems, saying how
// many there were.
func ReportProblems(t testing.TB, what string, problems []string) {
	t.Helper()
	if len(problems) == 0 {
		return
	}
	const max = 20
	shown, more := problems, ""
	if len(shown) > max {
		shown = shown[:max]
		more = fmt.Sprintf("\n  ... and %d more", len(problems)-max)
	}
	t.Errorf("%s: %d problems:\n  %s%s", what, len(problems), strings.Join(shown, "\n  "), more)
}
