package wire

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestKeyPath(t *testing.T) {
	for _, tc := range []struct{ key, want string }{
		{"a", "/api/v1/kv/a"},
		{"a/b c/d", "/api/v1/kv/a/b%20c/d"},
		{"a?b#c", "/api/v1/kv/a%3Fb%23c"},
		{"100%", "/api/v1/kv/100%25"},
	} {
		if got := KeyPath(tc.key); got != tc.want {
			t.Errorf("KeyPath(%q) = %q, want %q", tc.key, got, tc.want)
		}
	}
	if got := MemberPath("kv-0"); got != "/api/v1/cluster/members/kv-0" {
		t.Errorf("MemberPath = %q", got)
	}
}

func TestReadProblem(t *testing.T) {
	for _, tc := range []struct {
		name, body       string
		status           int
		code, detailPart string
	}{
		{"problem", `{"title":"No quorum","status":503,"code":"no_quorum","detail":"x"}`, 503, CodeNoQuorum, "x"},
		{"html from a proxy", "<html>502 Bad Gateway</html>\nmore", 502, CodeUnavailable, "HTTP 502: <html>502 Bad Gateway</html>"},
		{"a proxy's 504", "", 504, CodeUnavailable, "HTTP 504"},
		{"a bare 500", "oops", 500, CodeInternal, "HTTP 500: oops"},
		{"empty 4xx", "", 404, "", "HTTP 404"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := ReadProblem(&http.Response{StatusCode: tc.status, Body: io.NopCloser(strings.NewReader(tc.body))})
			if p.Code != tc.code || p.Status != tc.status || !strings.Contains(p.Detail, tc.detailPart) {
				t.Fatalf("got %+v, want code %q status %d detail containing %q", p, tc.code, tc.status, tc.detailPart)
			}
			if tc.code != "" && !strings.Contains(p.Error(), tc.code) {
				t.Fatalf("Error() = %q lacks the code", p.Error())
			}
		})
	}
}

func TestAddMemberRequestVoterDefault(t *testing.T) {
	f := false
	if !(AddMemberRequest{}).IsVoter() || (AddMemberRequest{Voter: &f}).IsVoter() {
		t.Fatal("Voter nil must mean true and &false false")
	}
}
