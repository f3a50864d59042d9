package auth

import (
	"os"
	"path/filepath"
	"testing"
)

func TestAccess(t *testing.T) {
	admin := NewPrincipal("admin", RoleAdmin, nil, Digest("a"))
	rw := NewPrincipal("rw", RoleReadWrite, []string{"app/", "shared/"}, Digest("b"))
	ro := NewPrincipal("ro", RoleReadOnly, nil, Digest("c"))
	tests := []struct {
		p      *Principal
		access Access
		key    string
		want   bool
	}{
		{&admin, Write, "anything", true},
		{&admin, Admin, "", true},
		{&rw, Write, "app/x", true},
		{&rw, Read, "shared/y", true},
		{&rw, Write, "other", false},
		{&rw, Write, "ap", false},
		{&rw, Admin, "app/x", false},
		{&ro, Read, "anything", true},
		{&ro, Write, "anything", false},
	}
	for _, tc := range tests {
		if got := tc.p.CanKey(tc.access, tc.key); got != tc.want {
			t.Errorf("%s CanKey(%d, %q) = %v, want %v", tc.p.Name, tc.access, tc.key, got, tc.want)
		}
	}
	if rw.CanPrefix(Read, "") || !rw.CanPrefix(Read, "app/sub/") || !admin.CanPrefix(Write, "") {
		t.Error("prefix access is wrong")
	}
}

func TestAuthenticate(t *testing.T) {
	a := NewAuthenticator([]Principal{
		NewPrincipal("one", RoleAdmin, nil, Digest("token-one")),
		NewPrincipal("two", RoleReadOnly, nil, Digest("token-two")),
	})
	for tok, want := range map[string]string{"token-one": "one", "token-two": "two", "token-three": "", "": "", "token-one ": ""} {
		p, ok := a.Authenticate(tok)
		if (want == "") == ok || (ok && p.Name != want) {
			t.Errorf("Authenticate(%q) = %v, %v; want %q", tok, p, ok, want)
		}
	}
}

func TestParseDigest(t *testing.T) {
	d := Digest("x")
	hexd := "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"
	got, err := ParseDigest(hexd)
	if err != nil || got != d {
		t.Errorf("ParseDigest = %x, %v", got, err)
	}
	for _, bad := range []string{"", "zz", hexd[:62], hexd + "00"} {
		if _, err := ParseDigest(bad); err == nil {
			t.Errorf("ParseDigest(%q) accepted", bad)
		}
	}
}

func TestEnsureAdminToken(t *testing.T) {
	dir := t.TempDir()
	path, tok, created, err := EnsureAdminToken(dir)
	if err != nil || !created || len(tok) < 40 || path != filepath.Join(dir, AdminTokenFile) {
		t.Fatalf("first call: %q %q %v %v", path, tok, created, err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
	}
	_, again, created, err := EnsureAdminToken(dir)
	if err != nil || created || again != tok {
		t.Errorf("second call: %q %v %v; want the same token, not created", again, created, err)
	}
	os.WriteFile(path, []byte("\n"), 0o600)
	if _, _, _, err := EnsureAdminToken(dir); err == nil {
		t.Error("empty token file accepted")
	}
}

// TestPrefixesEndOnSegments: a token prefix covers whole path segments, so a
// token limited to "app/" never reaches "apple/x", whether it names a key or
// a prefix to list, watch or delete. A prefix that does not end with "/"
// (config refuses it) grants nothing rather than a byte-wise match.
func TestPrefixesEndOnSegments(t *testing.T) {
	tests := map[string]struct {
		prefixes []string
		key      string // for CanKey; empty when only prefix is checked
		prefix   string // for CanPrefix
		want     bool
	}{
		"key under the prefix":              {prefixes: []string{"app/"}, key: "app/x", want: true},
		"key deeper under the prefix":       {prefixes: []string{"app/"}, key: "app/a/b", want: true},
		"sibling key with a longer name":    {prefixes: []string{"app/"}, key: "apple/x", want: false},
		"the segment itself":                {prefixes: []string{"app/"}, key: "app", want: false},
		"list under the prefix":             {prefixes: []string{"app/"}, prefix: "app/", want: true},
		"list part of a segment under it":   {prefixes: []string{"app/"}, prefix: "app/us", want: true},
		"list that would reach apple":       {prefixes: []string{"app/"}, prefix: "app", want: false},
		"list everything":                   {prefixes: []string{"app/"}, prefix: "", want: false},
		"nested prefix":                     {prefixes: []string{"team/app/"}, key: "team/app/x", want: true},
		"nested prefix, sibling":            {prefixes: []string{"team/app/"}, key: "team/apple/x", want: false},
		"no slash: not apple":               {prefixes: []string{"app"}, key: "apple/x", want: false},
		"no slash: grants nothing":          {prefixes: []string{"app"}, key: "app/x", want: false},
		"no slash: no list of apple":        {prefixes: []string{"app"}, prefix: "apple", want: false},
		"no slash beside a good one":        {prefixes: []string{"app", "shared/"}, key: "shared/x", want: true},
		"no slash beside a good one, apple": {prefixes: []string{"app", "shared/"}, key: "apple/x", want: false},
		"unclean prefix grants nothing":     {prefixes: []string{"/app/"}, key: "app/x", want: false},
		"no prefixes: every key":            {key: "apple/x", want: true},
		"no prefixes: every prefix":         {prefix: "", want: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := NewPrincipal("t", RoleReadWrite, tc.prefixes, Digest("t"))
			var got bool
			if tc.key != "" {
				got = p.CanKey(Read, tc.key)
			} else {
				got = p.CanPrefix(Read, tc.prefix)
			}
			if got != tc.want {
				t.Errorf("prefixes %q: key %q / prefix %q allowed = %v, want %v", tc.prefixes, tc.key, tc.prefix, got, tc.want)
			}
		})
	}
}

func TestValidPrefix(t *testing.T) {
	for p, ok := range map[string]bool{
		"app/": true, "team/app/": true, "a.b/": true,
		"": false, "/": false, "app": false, "/app/": false, "a//": false, "a/./": false, "../": false, "app/x": false,
	} {
		if err := ValidPrefix(p); (err == nil) != ok {
			t.Errorf("ValidPrefix(%q) = %v, want ok=%v", p, err, ok)
		}
	}
}

func TestAuthenticatorReplace(t *testing.T) {
	a := NewAuthenticator([]Principal{NewPrincipal("old", RoleAdmin, nil, Digest("old-token-0123456789"))})
	held, ok := a.Authenticate("old-token-0123456789")
	if !ok {
		t.Fatal("old token refused")
	}
	same := []Principal{NewPrincipal("old", RoleAdmin, nil, Digest("old-token-0123456789"))}
	if a.Replace(same) {
		t.Error("Replace with an equal set reported a change")
	}
	next := []Principal{NewPrincipal("new", RoleReadOnly, []string{"app/"}, Digest("new-token-0123456789"))}
	if !a.Replace(next) {
		t.Error("Replace with a new set reported no change")
	}
	next[0].Name = "mutated" // the caller's slice is copied
	if _, ok := a.Authenticate("old-token-0123456789"); ok {
		t.Error("removed token still accepted")
	}
	p, ok := a.Authenticate("new-token-0123456789")
	if !ok || p.Name != "new" || p.CanKey(Write, "app/x") || !p.CanKey(Read, "app/x") {
		t.Errorf("new token: %+v, %v", p, ok)
	}
	if held.Name != "old" || !held.CanAdmin() {
		t.Errorf("a principal returned before Replace changed: %+v", held)
	}
}
