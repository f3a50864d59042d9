package cluster

import (
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"kvstore.dev/kvstore/internal/auth"
)

// peerTokens are the peer tokens of a node read from a file
// (auth.ParsePeerTokens: the first signs, all verify), re-read when it
// changes, so a two-phase rotation needs no restart. As tlsreload does
// for certificates, the check rides on the handshakes: at most once per
// peerTokensInterval a handshake re-reads the file. A file that is missing
// or does not parse keeps the previous tokens in use and is logged once
// per distinct content. Connections already authenticated are not
// affected by a change. It is safe for concurrent use.
type peerTokens struct {
	file string
	log  *slog.Logger
	now  func() time.Time // a test seam

	mu        sync.Mutex
	tokens    [][]byte // never empty after newPeerTokens
	sum       [sha256.Size]byte
	bad       [sha256.Size]byte // the content last refused, logged once
	lastCheck time.Time
}

// peerTokensInterval is the least time between two reads of the file.
const peerTokensInterval = time.Second

// newPeerTokens reads file, which must hold at least one valid token.
func newPeerTokens(file string, log *slog.Logger) (*peerTokens, error) {
	if log == nil {
		log = slog.Default()
	}
	p := &peerTokens{file: file, log: log, now: time.Now}
	raw, tokens, err := p.load()
	if err != nil {
		return nil, err
	}
	p.tokens, p.sum, p.lastCheck = tokens, sha256.Sum256(raw), p.now()
	return p, nil
}

// current returns the tokens, first the one that signs, re-reading the
// file first if the last check is peerTokensInterval ago or more. The
// slice returned is never modified afterwards.
func (p *peerTokens) current() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.now().Sub(p.lastCheck) < peerTokensInterval {
		return p.tokens
	}
	p.lastCheck = p.now()
	raw, tokens, err := p.load()
	sum := sha256.Sum256(raw)
	switch {
	case err != nil:
		if sum != p.bad {
			p.bad = sum
			p.log.Error("peer token file reload failed; using the previous tokens", "peer_token_file", p.file, "err", err)
		}
	case sum != p.sum:
		p.tokens, p.sum, p.bad = tokens, sum, [sha256.Size]byte{}
		p.log.Info("peer tokens reloaded", "peer_token_file", p.file, "tokens", len(tokens))
	}
	return p.tokens
}

func (p *peerTokens) load() ([]byte, [][]byte, error) {
	raw, err := os.ReadFile(p.file)
	if err != nil {
		return nil, nil, fmt.Errorf("peer token file: %w", err)
	}
	list, err := auth.ParsePeerTokens(string(raw))
	if err != nil {
		return raw, nil, fmt.Errorf("peer token file %s: %w", p.file, err)
	}
	return raw, byteTokens(list), nil
}

func byteTokens(list []string) [][]byte {
	out := make([][]byte, len(list))
	for i, t := range list {
		out[i] = []byte(t)
	}
	return out
}

// newPeerAuth is the peer token side of a node's peerAuth: the tokens in
// text (auth.ParsePeerTokens) or, when file is set, those of file,
// re-read when it changes.
func newPeerAuth(text, file string, log *slog.Logger) (*peerAuth, error) {
	if file != "" {
		t, err := newPeerTokens(file, log)
		if err != nil {
			return nil, fmt.Errorf("cluster.peer_token_file: %w", err)
		}
		return &peerAuth{file: t}, nil
	}
	list, err := auth.ParsePeerTokens(text)
	if err != nil {
		return nil, fmt.Errorf("cluster.peer_token: %w", err)
	}
	tokens := byteTokens(list)
	return &peerAuth{token: tokens[0], accept: tokens[1:]}, nil
}
