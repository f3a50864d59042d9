package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"kvstore.dev/kvstore/client"
	"kvstore.dev/kvstore/wire"
)

// server answers every request with status and body, and keeps the last
// request it got.
func server(t *testing.T, status int, body string) (*client.Client, *http.Request, *[]byte) {
	t.Helper()
	got := &http.Request{}
	var sent []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*got = *r.Clone(context.Background())
		sent, _ = io.ReadAll(r.Body)
		if status >= 300 && strings.HasPrefix(body, "{") {
			w.Header().Set("Content-Type", wire.ContentTypeProblem)
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return client.New(srv.URL+"/", client.WithToken("s3cret"), client.WithHTTPClient(srv.Client())), got, &sent
}

func TestRequests(t *testing.T) {
	ctx := context.Background()
	voter := true
	cases := map[string]struct {
		call         func(*client.Client) error
		method, path string
		body         string
	}{
		"cluster status": {func(c *client.Client) error { _, err := c.ClusterStatus(ctx); return err }, http.MethodGet, wire.PathCluster, ""},
		"add member": {func(c *client.Client) error {
			return c.AddMember(ctx, wire.AddMemberRequest{ID: "kv-1", Address: "kv-1.peers:7000", Voter: &voter})
		}, http.MethodPost, wire.PathMembers, `{"id":"kv-1","address":"kv-1.peers:7000","voter":true}`},
		"remove member": {func(c *client.Client) error { return c.RemoveMember(ctx, "kv 2") }, http.MethodDelete, "/api/v1/cluster/members/kv%202", ""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c, got, sent := server(t, http.StatusOK, `{"leader_id":"kv-0"}`)
			if err := tc.call(c); err != nil {
				t.Fatal(err)
			}
			if got.Method != tc.method || got.URL.EscapedPath() != tc.path || string(*sent) != tc.body {
				t.Errorf("sent %s %s %s, want %s %s %s", got.Method, got.URL.EscapedPath(), *sent, tc.method, tc.path, tc.body)
			}
			if a := got.Header.Get("Authorization"); a != "Bearer s3cret" {
				t.Errorf("Authorization %q, want the bearer token", a)
			}
			if strings.Contains(got.URL.String(), "s3cret") {
				t.Errorf("the token is in the URL %s", got.URL)
			}
		})
	}
}

func TestClusterStatusDecodes(t *testing.T) {
	want := wire.ClusterStatus{Enabled: true, LeaderID: "kv-0", Members: []wire.Member{
		{ID: "kv-0", Address: "a:7000", Suffrage: wire.SuffrageVoter, Leader: true, Status: &wire.NodeStatus{ID: "kv-0", CommitIndex: 7, AppliedIndex: 7, LastLogTerm: 2, LastLogIndex: 8}},
		{ID: "kv-1", Address: "b:7000", Suffrage: wire.SuffrageNonvoter, Error: "timeout"},
	}}
	b, _ := json.Marshal(want)
	c, _, _ := server(t, http.StatusOK, string(b))
	got, err := c.ClusterStatus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if g, _ := json.Marshal(got); string(g) != string(b) {
		t.Errorf("got %s\nwant %s", g, b)
	}
}

func TestErrors(t *testing.T) {
	sentinels := []error{client.ErrNotFound, client.ErrNotMember, client.ErrPreconditionFailed, client.ErrNoQuorum,
		client.ErrNotClustered, client.ErrOutcomeUnknown, client.ErrUnauthorized, client.ErrForbidden, client.ErrUnavailable, client.ErrInvalidArgument}
	problem := func(status int, code string) string {
		b, _ := json.Marshal(wire.Problem{Title: http.StatusText(status), Status: status, Code: code, Detail: "details"})
		return string(b)
	}
	cases := map[string]struct {
		status int
		body   string
		want   error // nil: no sentinel matches
		code   string
	}{
		"not found":       {404, problem(404, wire.CodeNotFound), client.ErrNotFound, wire.CodeNotFound},
		"not a member":    {404, problem(404, wire.CodeNotMember), client.ErrNotMember, wire.CodeNotMember},
		"no quorum":       {503, problem(503, wire.CodeNoQuorum), client.ErrNoQuorum, wire.CodeNoQuorum},
		"not clustered":   {409, problem(409, wire.CodeNotClustered), client.ErrNotClustered, wire.CodeNotClustered},
		"outcome unknown": {504, problem(504, wire.CodeOutcomeUnknown), client.ErrOutcomeUnknown, wire.CodeOutcomeUnknown},
		"unauthorized":    {401, problem(401, wire.CodeUnauthorized), client.ErrUnauthorized, wire.CodeUnauthorized},
		"forbidden":       {403, problem(403, wire.CodeForbidden), client.ErrForbidden, wire.CodeForbidden},
		"precondition":    {412, problem(412, wire.CodePreconditionFailed), client.ErrPreconditionFailed, wire.CodePreconditionFailed},
		"unavailable":     {503, problem(503, wire.CodeUnavailable), client.ErrUnavailable, wire.CodeUnavailable},
		"invalid":         {400, problem(400, wire.CodeInvalidArgument), client.ErrInvalidArgument, wire.CodeInvalidArgument},
		"a proxy's 502":   {502, "<html>Bad Gateway</html>", client.ErrUnavailable, wire.CodeUnavailable},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c, _, _ := server(t, tc.status, tc.body)
			err := c.RemoveMember(context.Background(), "kv-1")
			var ce *client.Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v (%T), want a *client.Error", err, err)
			}
			if ce.Problem.Status != tc.status || ce.Problem.Code != tc.code {
				t.Errorf("problem %+v, want status %d code %q", ce.Problem, tc.status, tc.code)
			}
			for _, s := range sentinels {
				if errors.Is(err, s) != (s == tc.want) {
					t.Errorf("errors.Is(%v, %v) = %v", err, s, !(s == tc.want))
				}
			}
			if tc.want == nil && !strings.Contains(err.Error(), "Bad Gateway") {
				t.Errorf("error %q lacks the body of the answer", err)
			}
		})
	}
}

func TestTransportError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	err := client.New(srv.URL).RemoveMember(context.Background(), "kv-1")
	var ce *client.Error
	if err == nil || errors.As(err, &ce) || errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("error %v, want the transport's, not a problem", err)
	}
}
