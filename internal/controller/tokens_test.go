package controller

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kvv1 "kvstore.dev/kvstore/api/v1"
	"kvstore.dev/kvstore/internal/config"
)

// TestRenderTokens checks the tokens file rendered from spec.auth.tokens:
// the servers' own config loader accepts it and resolves the tokens with
// their roles and prefixes, the plain tokens are not in it, and each
// unusable entry is a problem naming its field.
func TestRenderTokens(t *testing.T) {
	secrets := map[string]*corev1.Secret{
		"app": {Data: map[string][]byte{"token": []byte("app-token-0123456789"), "short": []byte("x")}},
	}
	lookup := func(name string) *corev1.Secret { return secrets[name] }
	tok := func(name, role, secret, key string, prefixes ...string) kvv1.TokenSpec {
		return kvv1.TokenSpec{Name: name, Role: role, Prefixes: prefixes, SecretRef: kvv1.SecretKeyRef{Name: secret, Key: key}}
	}
	cases := map[string]struct {
		tokens  []kvv1.TokenSpec
		problem string // substring of the problem's message; "" for none
	}{
		"none":           {nil, ""},
		"two":            {[]kvv1.TokenSpec{tok("app", "readwrite", "app", "token", "app/"), tok("ops", "admin", "app", "token")}, ""},
		"missing Secret": {[]kvv1.TokenSpec{tok("a", "readonly", "nope", "token")}, "Secret nope (spec.auth.tokens[0].secretRef.name) does not exist"},
		"missing key":    {[]kvv1.TokenSpec{tok("a", "readonly", "app", "token"), tok("b", "readonly", "app", "other")}, `no key "other" (spec.auth.tokens[1].secretRef.key)`},
		"short token":    {[]kvv1.TokenSpec{tok("a", "readonly", "app", "short")}, "(spec.auth.tokens[0].secretRef) is shorter than 16"},
		"bad prefix":     {[]kvv1.TokenSpec{tok("a", "readonly", "app", "token", "a/../")}, "spec.auth.tokens[0].prefixes[0]"},
		"bad role":       {[]kvv1.TokenSpec{tok("a", "root", "app", "token")}, "spec.auth.tokens[0].role"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			kv := &kvv1.KVStore{ObjectMeta: metav1.ObjectMeta{Name: "kv", Namespace: "ns"}}
			kv.Spec.Auth.Tokens = tc.tokens
			file, err := renderTokens(kv, lookup)
			if tc.problem != "" {
				var p *problem
				if !errors.As(err, &p) || !strings.Contains(p.message, tc.problem) {
					t.Fatalf("error %v, want a problem containing %q", err, tc.problem)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(file, "app-token-0123456789") {
				t.Error("the plain token is in the tokens file")
			}
			path := filepath.Join(t.TempDir(), tokensFile)
			if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := config.Default()
			cfg.Auth.TokensFile = path
			ps, err := cfg.Principals()
			if err != nil {
				t.Fatalf("the server refuses the file: %v\n%s", err, file)
			}
			if len(ps) != len(tc.tokens) {
				t.Fatalf("%d principals, want %d", len(ps), len(tc.tokens))
			}
			for i, p := range ps {
				want := tc.tokens[i]
				if p.Name != want.Name || string(p.Role) != want.Role || strings.Join(p.Prefixes, ",") != strings.Join(want.Prefixes, ",") {
					t.Errorf("principal %d: %+v, want %+v", i, p, want)
				}
			}
		})
	}
}
