package store

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// ValidateKey reports whether key is acceptable to the store, given the
// configured maximum key length in bytes.
//
// A key is 1..maxBytes bytes of valid UTF-8 without control characters
// (C0, DEL and C1), forming a clean slash-separated path: no leading or
// trailing "/", no empty segment ("a//b"), and no "." or ".." segment. Keys
// are never cleaned or rewritten; a key that is not already clean is refused,
// so that the key a client sends is exactly the key stored.
func ValidateKey(key string, maxBytes int) error {
	if key == "" {
		return fmt.Errorf("%w: key is empty", ErrInvalidKey)
	}
	if len(key) > maxBytes {
		return fmt.Errorf("%w: key is %d bytes, the limit is %d", ErrKeyTooLarge, len(key), maxBytes)
	}
	if err := validateText(key); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	if strings.HasPrefix(key, "/") {
		return fmt.Errorf("%w: key must not start with '/'", ErrInvalidKey)
	}
	if strings.HasSuffix(key, "/") {
		return fmt.Errorf("%w: key must not end with '/'", ErrInvalidKey)
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch seg {
		case "":
			return fmt.Errorf("%w: key has an empty path segment ('//')", ErrInvalidKey)
		case ".", "..":
			return fmt.Errorf("%w: key has a %q path segment", ErrInvalidKey, seg)
		}
	}
	return nil
}

// ValidatePrefix reports whether prefix may be used to list, watch or delete
// keys. The empty prefix (every key) is valid here; callers that refuse it do
// so themselves. Unlike a key, a prefix may end with "/".
func ValidatePrefix(prefix string, maxBytes int) error {
	if len(prefix) > maxBytes {
		return fmt.Errorf("%w: prefix is %d bytes, the limit is %d", ErrKeyTooLarge, len(prefix), maxBytes)
	}
	if err := validateText(prefix); err != nil {
		return fmt.Errorf("%w: prefix: %v", ErrInvalidKey, err)
	}
	return nil
}

func validateText(s string) error {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size <= 1 {
				return fmt.Errorf("invalid UTF-8 at byte %d", i)
			}
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) {
			return fmt.Errorf("control character %U at byte %d", r, i)
		}
	}
	return nil
}
