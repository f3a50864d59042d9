package console

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"net/url"
	"testing"
)

func TestOrigin(t *testing.T) {
	tests := []struct {
		raw, want string
	}{
		{"http://127.0.0.1:8080/x?y", "http://127.0.0.1:8080"},
		{"https://Example.COM/", "https://example.com"},
		{"https://example.com:443/a", "https://example.com"},
		{"http://example.com:80", "http://example.com"},
		{"https://example.com:8443", "https://example.com:8443"},
		{"http://[::1]:9000/", "http://[::1]:9000"},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			u, err := url.Parse(tt.raw)
			if err != nil {
				t.Fatal(err)
			}
			if got := origin(u); got != tt.want {
				t.Errorf("origin(%q) = %q, want %q", tt.raw, got, tt.want)
			}
		})
	}
}

func TestMonitorRequests(t *testing.T) {
	base, _ := url.Parse("https://kvstore.test")
	tests := []struct {
		name    string
		url     string
		problem bool
	}{
		{"same origin", "https://kvstore.test/app.js", false},
		{"same origin, default port", "https://kvstore.test:443/api/v1/status", false},
		{"data URL", "data:image/svg+xml,<svg/>", false},
		{"other origin", "https://cdn.example/font.woff2", true},
		{"other scheme", "http://kvstore.test/", true},
		{"token in the URL", "https://kvstore.test/api/v1/watch?x=s3cret-token", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMonitor(base, "s3cret-token")
			m.request(tt.url)
			if got := len(m.problems) > 0; got != tt.problem {
				t.Errorf("request(%q): problems %q, want a problem: %v", tt.url, m.problems, tt.problem)
			}
		})
	}
}

func TestSelectors(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{byTestID("key-row"), `[data-testid="key-row"]`},
		{row(`a/"b"\c`), `[data-testid="key-row"][data-key="a/\"b\"\\c"]`},
		{event("put", "a/b"), `[data-testid="event"][data-type="put"][data-key="a/b"]`},
		{jsString("a\"b\\c\n"), `"a\"b\\c\n"`},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %s, want %s", tt.got, tt.want)
		}
	}
}

func TestSPKIHash(t *testing.T) {
	cert := &x509.Certificate{RawSubjectPublicKeyInfo: []byte("spki")}
	sum := sha256.Sum256([]byte("spki"))
	if got, want := SPKIHash(cert), base64.StdEncoding.EncodeToString(sum[:]); got != want {
		t.Errorf("SPKIHash = %q, want %q", got, want)
	}
}
