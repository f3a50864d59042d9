package config

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"kvstore.dev/kvstore/internal/auth"
)

// validateTokens checks a token list whose field path is field ("auth.tokens"),
// recording every name in names so that names stay unique across lists.
func validateTokens(field string, tokens []Token, names map[string]bool, bad func(field, format string, args ...any)) {
	for i, t := range tokens {
		f := fmt.Sprintf("%s[%d]", field, i)
		if t.Name == "" {
			bad(f+".name", "must not be empty")
		} else if names[t.Name] {
			bad(f+".name", "%q is used by another token", t.Name)
		}
		names[t.Name] = true
		set := 0
		for _, s := range []string{t.Token, t.TokenFile, t.SHA256} {
			if s != "" {
				set++
			}
		}
		if set != 1 {
			bad(f, "exactly one of token, token_file and sha256 must be set (%d are)", set)
		}
		if t.Token != "" && len(t.Token) < minTokenLength {
			bad(f+".token", "must be at least %d characters", minTokenLength)
		}
		if t.SHA256 != "" {
			if _, err := auth.ParseDigest(t.SHA256); err != nil {
				bad(f+".sha256", "%v", err)
			}
		}
		if !t.Role.Valid() {
			bad(f+".role", "%q is not one of admin, readwrite, readonly", t.Role)
		}
		for j, p := range t.Prefixes {
			field := fmt.Sprintf("%s.prefixes[%d]", f, j)
			if p == "" {
				bad(field, "must not be empty (omit prefixes to allow every key)")
			} else if err := auth.ValidPrefix(p); err != nil {
				bad(field, "%q %v", p, err)
			}
		}
	}
}

// tokensFile is the document auth.tokens_file holds.
type tokensFile struct {
	Tokens []Token `json:"tokens"`
}

// readTokensFile reads and validates auth.tokens_file; names holds the
// names of the inline tokens, which the file's must not reuse.
func (c *Config) readTokensFile(names map[string]bool) ([]Token, error) {
	b, err := os.ReadFile(c.Auth.TokensFile)
	if err != nil {
		return nil, fmt.Errorf("auth.tokens_file: %w", err)
	}
	var doc tokensFile
	if err := parseStrict(b, &doc); err != nil {
		return nil, fmt.Errorf("auth.tokens_file: %s: %w", c.Auth.TokensFile, err)
	}
	var errs []error
	validateTokens("tokens", doc.Tokens, names, func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("auth.tokens_file: %s: %s: %s", c.Auth.TokensFile, field, fmt.Sprintf(format, args...)))
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return doc.Tokens, nil
}

// Principals resolves the configured tokens, reading auth.tokens_file and
// token files, into principals. Call it after Validate; the server calls it
// again whenever it re-reads the files (Auth.Reloadable).
func (c *Config) Principals() ([]auth.Principal, error) {
	tokens := c.Auth.Tokens
	fields := make([]string, 0, len(tokens))
	for i := range tokens {
		fields = append(fields, fmt.Sprintf("auth.tokens[%d]", i))
	}
	if c.Auth.TokensFile != "" {
		names := map[string]bool{}
		for _, t := range tokens {
			names[t.Name] = true
		}
		more, err := c.readTokensFile(names)
		if err != nil {
			return nil, err
		}
		tokens = append(append([]Token(nil), tokens...), more...)
		for i := range more {
			fields = append(fields, fmt.Sprintf("auth.tokens_file: %s: tokens[%d]", c.Auth.TokensFile, i))
		}
	}
	out := make([]auth.Principal, 0, len(tokens))
	for i, t := range tokens {
		var d [32]byte
		switch {
		case t.Token != "":
			d = auth.Digest(t.Token)
		case t.TokenFile != "":
			b, err := os.ReadFile(t.TokenFile)
			if err != nil {
				return nil, fmt.Errorf("%s.token_file: %w", fields[i], err)
			}
			tok := strings.TrimSpace(string(b))
			if len(tok) < minTokenLength {
				return nil, fmt.Errorf("%s.token_file: %s holds a token shorter than %d characters", fields[i], t.TokenFile, minTokenLength)
			}
			d = auth.Digest(tok)
		default:
			var err error
			if d, err = auth.ParseDigest(t.SHA256); err != nil {
				return nil, fmt.Errorf("%s.sha256: %w", fields[i], err)
			}
		}
		out = append(out, auth.NewPrincipal(t.Name, t.Role, t.Prefixes, d))
	}
	return out, nil
}
