package auth

import (
	"errors"
	"fmt"
	"strings"
)

// MinPeerTokenLength is the shortest peer token accepted.
const MinPeerTokenLength = 16

// ErrNoPeerToken is a peer tokens text with no token in it.
var ErrNoPeerToken = errors.New("auth: no peer token")

// ParsePeerTokens parses the peer tokens of a cluster node (the peer token
// file, or KVSTORE_PEER_TOKEN): one token per line, each trimmed, lines
// that are empty or start with '#' skipped. The first token signs: the
// node proves itself to its peers with it. Every token verifies: a peer
// proving any of them is accepted. That makes the two-phase rotation of a
// peer token A to B, each step done on every node before the next:
//
//	A        before
//	A, B     1. accept B too (A still signs)
//	B, A     2. switch: B signs, A still accepted
//	B        3. drop A
//
// Any two nodes one step apart share the token the other signs with, so
// the cluster stays connected throughout. A single-line text is the one
// token of before. Errors name the line, never the token.
func ParsePeerTokens(text string) ([]string, error) {
	var out []string
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if len(line) < MinPeerTokenLength {
			return nil, fmt.Errorf("line %d: the peer token must be at least %d characters", i+1, MinPeerTokenLength)
		}
		out = append(out, line)
	}
	if len(out) == 0 {
		return nil, ErrNoPeerToken
	}
	return out, nil
}
