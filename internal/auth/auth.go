// Package auth authenticates bearer tokens and decides what each token may
// do. Tokens are held only as SHA-256 digests and compared in constant time
// against every configured digest, so neither the comparison's timing nor a
// memory dump reveals a token.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
)

// Role is what a token may do, within its prefixes.
type Role string

// The roles. An admin may also take snapshots and manage the cluster.
const (
	RoleAdmin     Role = "admin"
	RoleReadWrite Role = "readwrite"
	RoleReadOnly  Role = "readonly"
)

// Valid reports whether r is one of the known roles.
func (r Role) Valid() bool {
	return r == RoleAdmin || r == RoleReadWrite || r == RoleReadOnly
}

// Principal is an authenticated token's identity and rights. It is immutable.
type Principal struct {
	Name string
	Role Role
	// Prefixes limit the keys the principal may touch; empty means all.
	// Each must pass ValidPrefix (end with "/"); one that does not grants
	// nothing.
	Prefixes []string
	digest   [sha256.Size]byte
}

// NewPrincipal returns a principal for a token whose SHA-256 digest is digest.
func NewPrincipal(name string, role Role, prefixes []string, digest [sha256.Size]byte) Principal {
	return Principal{Name: name, Role: role, Prefixes: append([]string(nil), prefixes...), digest: digest}
}

// Digest returns the SHA-256 digest of token.
func Digest(token string) [sha256.Size]byte { return sha256.Sum256([]byte(token)) }

// ParseDigest parses a hex-encoded SHA-256 digest.
func ParseDigest(s string) ([sha256.Size]byte, error) {
	var d [sha256.Size]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != sha256.Size {
		return d, errors.New("must be 64 hexadecimal characters (a SHA-256 digest)")
	}
	copy(d[:], b)
	return d, nil
}

// Access is what a request wants to do.
type Access int

// Kinds of access.
const (
	Read Access = iota
	Write
	Admin
)

// CanKey reports whether p may perform access on key.
func (p *Principal) CanKey(a Access, key string) bool {
	return p.roleAllows(a) && p.covers(key)
}

// CanPrefix reports whether p may perform access on every key under prefix:
// the prefix must itself lie within one of p's prefixes.
func (p *Principal) CanPrefix(a Access, prefix string) bool {
	return p.roleAllows(a) && p.covers(prefix)
}

// CanAdmin reports whether p is an admin.
func (p *Principal) CanAdmin() bool { return p.Role == RoleAdmin }

func (p *Principal) roleAllows(a Access) bool {
	switch p.Role {
	case RoleAdmin:
		return true
	case RoleReadWrite:
		return a == Read || a == Write
	case RoleReadOnly:
		return a == Read
	}
	return false
}

// covers reports whether every key starting with s lies within one of p's
// prefixes. Because each prefix ends with "/", a byte-wise HasPrefix is a
// match of whole segments: "app/" covers "app/x" and "app/" but never
// "apple/x", and a request for the prefix "app" (which would list "apple")
// is not covered. A prefix that fails ValidPrefix covers nothing, so a
// principal built without config validation fails closed.
func (p *Principal) covers(s string) bool {
	if len(p.Prefixes) == 0 {
		return true
	}
	for _, pre := range p.Prefixes {
		if ValidPrefix(pre) == nil && strings.HasPrefix(s, pre) {
			return true
		}
	}
	return false
}

// ValidPrefix reports whether pre may limit a token: one or more clean key
// segments followed by "/" ("app/", "team/app/"). The trailing "/" is what
// keeps "app/" from reaching "apple/x"; the segments are clean ("a//",
// "/a/", "a/../" are refused) because no key could ever match them.
func ValidPrefix(pre string) error {
	body, ok := strings.CutSuffix(pre, "/")
	if !ok {
		return errors.New(`must end with "/" so that it covers whole path segments (write "app/", not "app")`)
	}
	if body == "" || strings.HasPrefix(body, "/") {
		return errors.New(`must start with a path segment, not "/"`)
	}
	for seg := range strings.SplitSeq(body, "/") {
		switch seg {
		case "":
			return errors.New(`must not have an empty path segment ("//")`)
		case ".", "..":
			return fmt.Errorf("must not have a %q path segment", seg)
		}
	}
	return nil
}

// Authenticator maps presented tokens to principals. It is safe for
// concurrent use; Replace swaps the whole set at once, so a request sees
// either the old set or the new one, never a mix.
type Authenticator struct {
	principals atomic.Pointer[[]Principal] // never nil; the slice is never modified
}

// NewAuthenticator returns an authenticator for principals.
func NewAuthenticator(principals []Principal) *Authenticator {
	a := &Authenticator{}
	a.Replace(principals)
	return a
}

// Replace makes principals the accepted set from now on and reports whether
// it differs from the previous one (names, roles, prefixes or tokens).
// Principals already returned by Authenticate stay valid.
func (a *Authenticator) Replace(principals []Principal) (changed bool) {
	next := make([]Principal, len(principals))
	for i, p := range principals {
		next[i] = NewPrincipal(p.Name, p.Role, p.Prefixes, p.digest)
	}
	if prev := a.principals.Load(); prev != nil && samePrincipals(*prev, next) {
		return false
	}
	a.principals.Store(&next)
	return true
}

// Names returns the names of the accepted principals, in order.
func (a *Authenticator) Names() []string {
	ps := *a.principals.Load()
	names := make([]string, len(ps))
	for i := range ps {
		names[i] = ps[i].Name
	}
	return names
}

func samePrincipals(x, y []Principal) bool {
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if x[i].Name != y[i].Name || x[i].Role != y[i].Role || x[i].digest != y[i].digest || !slices.Equal(x[i].Prefixes, y[i].Prefixes) {
			return false
		}
	}
	return true
}

// Authenticate returns the principal whose token is token. It compares the
// token's digest with every configured digest in constant time, whatever
// matches.
func (a *Authenticator) Authenticate(token string) (*Principal, bool) {
	if token == "" {
		return nil, false
	}
	d := Digest(token)
	ps := *a.principals.Load()
	match := -1
	for i := range ps {
		if subtle.ConstantTimeCompare(d[:], ps[i].digest[:]) == 1 && match < 0 {
			match = i
		}
	}
	if match < 0 {
		return nil, false
	}
	return &ps[match], true
}

// GenerateToken returns a new random token (256 bits, URL-safe).
func GenerateToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	return "kvs_" + base64.RawURLEncoding.EncodeToString(b), nil
}

// AdminTokenFile is the name of the generated admin token inside the data
// directory.
const AdminTokenFile = "admin.token"

// EnsureAdminToken returns the token stored in dataDir/admin.token, creating
// the file (mode 0600, created exclusively) with a new token if it does not
// exist. created reports whether this call made it.
func EnsureAdminToken(dataDir string) (path, token string, created bool, err error) {
	path = filepath.Join(dataDir, AdminTokenFile)
	if b, err := os.ReadFile(path); err == nil {
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return path, "", false, fmt.Errorf("%s is empty; delete it to generate a new token", path)
		}
		return path, tok, false, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return path, "", false, fmt.Errorf("read admin token: %w", err)
	}
	tok, err := GenerateToken()
	if err != nil {
		return path, "", false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return path, "", false, fmt.Errorf("create admin token: %w", err)
	}
	if _, err := f.WriteString(tok + "\n"); err != nil {
		f.Close()
		return path, "", false, fmt.Errorf("write admin token: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return path, "", false, fmt.Errorf("sync admin token: %w", err)
	}
	return path, tok, true, f.Close()
}
