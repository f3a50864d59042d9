package httpapi

import "testing"

// TestRecoverRefused: POST /api/v1/cluster/recover needs an admin token and
// a node_id and request_id, and a single node (no Recover option, no
// cluster) is not_clustered. The cluster's refusals (a leader seen,
// another node, one server already) and the restart are tested with real
// processes: TestRecoverThroughAPI in test/e2e/cluster.
func TestRecoverRefused(t *testing.T) {
	ts := newTestServer(t)
	for name, tc := range map[string]struct {
		token, body, code string
	}{
		"not admin":     {rwToken, `{"node_id":"n0","request_id":"r"}`, "forbidden"},
		"no token":      {"", `{"node_id":"n0","request_id":"r"}`, "unauthorized"},
		"no node":       {adminToken, `{"request_id":"r"}`, "invalid_argument"},
		"no request id": {adminToken, `{"node_id":"n0"}`, "invalid_argument"},
		"unknown field": {adminToken, `{"node_id":"n0","request_id":"r","force":true}`, "invalid_argument"},
		"single node":   {adminToken, `{"node_id":"n0","request_id":"r"}`, "not_clustered"},
	} {
		t.Run(name, func(t *testing.T) {
			p := readProblem(t, ts.do(t, req{method: "POST", path: "/api/v1/cluster/recover", token: tc.token, body: tc.body}))
			if p.Code != tc.code {
				t.Errorf("code %q (%s), want %s", p.Code, p.Detail, tc.code)
			}
		})
	}
}
