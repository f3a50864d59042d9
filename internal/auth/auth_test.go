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
