package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"kvstore.dev/kvstore/internal/auth"
	"kvstore.dev/kvstore/internal/backend"
	"kvstore.dev/kvstore/internal/cluster"
	"kvstore.dev/kvstore/internal/errcode"
	"kvstore.dev/kvstore/wire"
)

// memberBackend is a cluster backend whose membership calls validate as a
// cluster.Node does and then succeed, or report an unknown member.
type memberBackend struct {
	backend.Node
	members map[string]bool
}

func (b *memberBackend) AddMember(_ context.Context, m wire.AddMemberRequest) error {
	if err := cluster.ValidateMemberID(m.ID); err != nil {
		return err
	}
	if err := cluster.ValidateMemberAddress(m.Address); err != nil {
		return err
	}
	b.members[m.ID] = true
	return nil
}

func (b *memberBackend) RemoveMember(_ context.Context, id string) error {
	if err := cluster.ValidateMemberID(id); err != nil {
		return err
	}
	if !b.members[id] {
		return fmt.Errorf("remove %s: %w", id, errcode.ErrNotMember)
	}
	delete(b.members, id)
	return nil
}

// FuzzMembers sends arbitrary bodies to POST /api/v1/cluster/members and
// ids to DELETE: never a 5xx, every error a problem+json with a 4xx, a
// malformed id or address a 400 naming the field, and a member accepted
// only with an id and address that pass validation.
func FuzzMembers(f *testing.F) {
	for _, s := range []struct{ body, del string }{
		{`{"id":"n3","address":"n3.peers:7000","voter":false}`, "n3"},
		{`{"id":"n3","address":"not-an-address"}`, "nobody"},
		{`{"id":"` + strings.Repeat("x", 60000) + `","address":"h:1"}`, "x"},
		{`{"id":"a\u0000b","address":"h:1"}`, "a%00b"},
		{`{"id":"a\nb","address":"[::1]:65536"}`, "a%0Ab"},
		{`{"id":"n1","address":"10.0.0.1:0"}`, "-n1"},
		{`{"id":"n1","address":"h:+7"}`, "n1."},
		{`{"id":1}`, "%2F"},
	} {
		f.Add([]byte(s.body), s.del)
	}
	st := newTestServer(f)
	mb := &memberBackend{Node: backend.Node{Store: st.store, WritePath: st.node}, members: map[string]bool{}}
	a := auth.NewAuthenticator([]auth.Principal{auth.NewPrincipal("admin", auth.RoleAdmin, nil, auth.Digest(adminToken))})
	api := New(mb, a, Options{MaxKeyBytes: 64, MaxValueBytes: 1024, Version: "test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	check := func(t *testing.T, r *http.Request) *httptest.ResponseRecorder {
		r.Header.Set("Authorization", "Bearer "+adminToken)
		w := httptest.NewRecorder()
		api.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("%s %s: %d %s", r.Method, r.URL, w.Code, w.Body)
		}
		if w.Code >= 400 && w.Header().Get("Content-Type") != "application/problem+json" {
			t.Fatalf("%s %s: %d with Content-Type %q", r.Method, r.URL, w.Code, w.Header().Get("Content-Type"))
		}
		return w
	}
	f.Fuzz(func(t *testing.T, body []byte, del string) {
		r := httptest.NewRequest(http.MethodPost, "/api/v1/cluster/members", bytes.NewReader(body))
		w := check(t, r)
		var m struct{ ID, Address string }
		if w.Code == http.StatusOK {
			if err := json.Unmarshal(body, &m); err != nil {
				t.Fatalf("accepted a body that does not decode: %v", err)
			}
			if cluster.ValidateMemberID(m.ID) != nil || cluster.ValidateMemberAddress(m.Address) != nil {
				t.Fatalf("accepted id %q address %q", m.ID, m.Address)
			}
			if strings.ContainsAny(m.ID+m.Address, "\x00\n\r/ ") || len(m.ID) > 253 {
				t.Fatalf("accepted id %q address %q", m.ID, m.Address)
			}
		}
		if w.Code == http.StatusBadRequest && json.Unmarshal(body, &m) == nil {
			var p Problem
			_ = json.Unmarshal(w.Body.Bytes(), &p)
			if p.Code != "invalid_argument" || !(strings.HasPrefix(p.Detail, "id:") || strings.HasPrefix(p.Detail, "address:") || strings.HasPrefix(p.Detail, "body:")) {
				t.Fatalf("400 that names no field: %+v", p)
			}
		}
		req, err := http.NewRequest(http.MethodDelete, "http://kv/api/v1/cluster/members/"+del, nil)
		if err != nil {
			return
		}
		w = check(t, req)
		if w.Code == http.StatusOK && cluster.ValidateMemberID(req.PathValue("id")) != nil && cluster.ValidateMemberID(strings.TrimPrefix(req.URL.Path, "/api/v1/cluster/members/")) != nil {
			t.Fatalf("removed an invalid id %q", del)
		}
	})
}

// TestMemberErrors pins the membership answers: 400 naming the field, 404
// not_member for an unknown member.
func TestMemberErrors(t *testing.T) {
	st := newTestServer(t)
	mb := &memberBackend{Node: backend.Node{Store: st.store, WritePath: st.node}, members: map[string]bool{}}
	a := auth.NewAuthenticator([]auth.Principal{auth.NewPrincipal("admin", auth.RoleAdmin, nil, auth.Digest(adminToken))})
	api := New(mb, a, Options{MaxKeyBytes: 64, MaxValueBytes: 1024, Version: "test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	tests := map[string]struct {
		method, path, body string
		status             int
		code, detailPrefix string
	}{
		"address not host:port": {"POST", "/api/v1/cluster/members", `{"id":"n3","address":"not-an-address"}`, 400, "invalid_argument", "address:"},
		"port zero":             {"POST", "/api/v1/cluster/members", `{"id":"n3","address":"h:0"}`, 400, "invalid_argument", "address:"},
		"port too large":        {"POST", "/api/v1/cluster/members", `{"id":"n3","address":"h:65536"}`, 400, "invalid_argument", "address:"},
		"long id":               {"POST", "/api/v1/cluster/members", `{"id":"` + strings.Repeat("x", 60000) + `","address":"h:1"}`, 400, "invalid_argument", "id:"},
		"NUL in id":             {"POST", "/api/v1/cluster/members", `{"id":"a\u0000b","address":"h:1"}`, 400, "invalid_argument", "id:"},
		"newline in id":         {"POST", "/api/v1/cluster/members", `{"id":"a\nb","address":"h:1"}`, 400, "invalid_argument", "id:"},
		"missing id":            {"POST", "/api/v1/cluster/members", `{"address":"h:1"}`, 400, "invalid_argument", "id:"},
		"valid":                 {"POST", "/api/v1/cluster/members", `{"id":"demo-3","address":"demo-3.demo-peers.ns.svc:7000"}`, 200, "", ""},
		"unknown member":        {"DELETE", "/api/v1/cluster/members/nobody", "", 404, "not_member", "remove nobody"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			r.Header.Set("Authorization", "Bearer "+adminToken)
			w := httptest.NewRecorder()
			api.ServeHTTP(w, r)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if tc.code == "" {
				return
			}
			var p Problem
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
				t.Fatal(err)
			}
			if p.Code != tc.code || !strings.HasPrefix(p.Detail, tc.detailPrefix) {
				t.Errorf("problem %+v, want code %s and a detail starting %q", p, tc.code, tc.detailPrefix)
			}
		})
	}
}
