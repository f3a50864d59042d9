package httpapi

import (
	"encoding/json"
	"slices"
	"testing"
)

// TestStatusByRole: every token sees the server's version and revision, but
// only an admin sees the store-wide numbers (key count, database size,
// watchers, applied index) and the cluster with its peer addresses.
func TestStatusByRole(t *testing.T) {
	ts := newTestServer(t)
	ts.do(t, req{method: "PUT", path: "/api/v1/kv/other/secret", token: adminToken, body: "v"})
	everyone := []string{"revision", "started_at", "uptime_seconds", "version"}
	adminOnly := []string{"applied_index", "db_size_bytes", "keys", "watchers"}
	tests := map[string]struct {
		token       string
		wantFields  []string
		wantCluster int
	}{
		"admin":                     {token: adminToken, wantFields: append(slices.Clone(everyone), adminOnly...), wantCluster: 200},
		"readwrite limited to app/": {token: rwToken, wantFields: everyone, wantCluster: 403},
		"readonly on every key":     {token: roToken, wantFields: everyone, wantCluster: 403},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			resp := ts.do(t, req{method: "GET", path: "/api/v1/status", token: tc.token})
			if resp.StatusCode != 200 {
				t.Fatalf("GET /api/v1/status: %d", resp.StatusCode)
			}
			var st map[string]json.RawMessage
			if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
				t.Fatal(err)
			}
			var got []string
			for k := range st {
				got = append(got, k)
			}
			want := slices.Clone(tc.wantFields)
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(want, got) {
				t.Errorf("status fields:\n-want %q\n+got  %q", want, got)
			}

			resp = ts.do(t, req{method: "GET", path: "/api/v1/cluster", token: tc.token})
			if resp.StatusCode != tc.wantCluster {
				t.Fatalf("GET /api/v1/cluster: %d, want %d", resp.StatusCode, tc.wantCluster)
			}
			if tc.wantCluster == 403 {
				if p := readProblem(t, resp); p.Code != "forbidden" {
					t.Errorf("GET /api/v1/cluster: code %q, want forbidden", p.Code)
				}
			}
		})
	}
}

// TestSingleNodeCluster: a single node answers the cluster endpoints
// through the same write path as a cluster: not enabled, itself the
// leader at its applied index, and membership changes not_clustered.
func TestSingleNodeCluster(t *testing.T) {
	ts := newTestServer(t)
	ts.do(t, req{method: "PUT", path: "/api/v1/kv/a", token: adminToken, body: "v"})
	var st map[string]any
	if err := json.NewDecoder(ts.do(t, req{method: "GET", path: "/api/v1/cluster", token: adminToken}).Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	self, _ := st["self"].(map[string]any)
	if st["enabled"] != false || self["state"] != "Leader" || self["applied_index"] != float64(ts.store.AppliedIndex()) || ts.store.AppliedIndex() == 0 {
		t.Errorf("GET /api/v1/cluster = %v, want enabled false and self Leader at applied index %d", st, ts.store.AppliedIndex())
	}
	for _, r := range []req{
		{method: "POST", path: "/api/v1/cluster/members", token: adminToken, body: `{"id":"n1","address":"h:1"}`},
		{method: "DELETE", path: "/api/v1/cluster/members/n1", token: adminToken},
	} {
		if p := readProblem(t, ts.do(t, r)); p.Code != "not_clustered" {
			t.Errorf("%s %s: code %q, want not_clustered", r.method, r.path, p.Code)
		}
	}
}
