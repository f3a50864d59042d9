package store

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestValidateKey(t *testing.T) {
	tests := map[string]struct {
		key  string
		want error
	}{
		"simple":             {"a", nil},
		"path":               {"users/42/name", nil},
		"unicode":            {"ключ/値", nil},
		"dots inside":        {"a.b/..c/d..", nil},
		"spaces and symbols": {"a b/c:d@e%f", nil},
		"max length":         {strings.Repeat("k", 16), nil},
		"empty":              {"", ErrInvalidKey},
		"too long":           {strings.Repeat("k", 17), ErrKeyTooLarge},
		"leading slash":      {"/a", ErrInvalidKey},
		"trailing slash":     {"a/", ErrInvalidKey},
		"double slash":       {"a//b", ErrInvalidKey},
		"dot segment":        {"a/./b", ErrInvalidKey},
		"dotdot segment":     {"a/../b", ErrInvalidKey},
		"only dotdot":        {"..", ErrInvalidKey},
		"NUL":                {"a\x00b", ErrInvalidKey},
		"newline":            {"a\nb", ErrInvalidKey},
		"DEL":                {"a\x7fb", ErrInvalidKey},
		"C1 control":         {"a\u0085b", ErrInvalidKey},
		"invalid UTF-8":      {"a\xffb", ErrInvalidKey},
		"truncated UTF-8":    {"a\xe2\x82", ErrInvalidKey},
		"encoded U+FFFD ok":  {"a\uFFFDb", nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := ValidateKey(tc.key, 16)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Errorf("ValidateKey(%q) = %v, want %v", tc.key, err, tc.want)
			}
		})
	}
}

// FuzzValidateKey checks that any accepted key has the documented shape.
func FuzzValidateKey(f *testing.F) {
	for _, s := range []string{"a", "a/b", "/a", "a//b", "a/../b", "\x00", "é", "\xff", "a/./b", strings.Repeat("x", 40)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if ValidateKey(key, 32) != nil {
			return
		}
		if key == "" || len(key) > 32 || !utf8.ValidString(key) {
			t.Fatalf("accepted %q", key)
		}
		for _, seg := range strings.Split(key, "/") {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("accepted unclean key %q", key)
			}
		}
		for _, r := range key {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) {
				t.Fatalf("accepted control character in %q", key)
			}
		}
	})
}

// FuzzCommandDecode checks that decoding arbitrary bytes never panics and
// that whatever decodes re-encodes to an equivalent command.
func FuzzCommandDecode(f *testing.F) {
	seed, _ := Command{Op: OpPut, Key: "k", Value: []byte("v"), ContentType: "t", Now: 1}.MarshalBinary()
	f.Add(seed)
	f.Add([]byte{1, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var c Command
		if c.UnmarshalBinary(b) != nil {
			return
		}
		again, _ := c.MarshalBinary()
		var d Command
		if err := d.UnmarshalBinary(again); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if d.Key != c.Key || d.ContentType != c.ContentType || string(d.Value) != string(c.Value) || d.Op != c.Op {
			t.Fatalf("round trip changed %+v to %+v", c, d)
		}
	})
}
