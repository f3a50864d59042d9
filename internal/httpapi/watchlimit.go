package httpapi

import (
	"fmt"
	"sync"
)

// Default watch limits, used when Options leave them zero; config's
// watch.max_watches and watch.max_watches_per_token set them.
const (
	DefaultMaxWatches         = 10_000
	DefaultMaxWatchesPerToken = 100
)

// watchLimiter counts open watch streams, in all and per token. It is safe
// for concurrent use.
type watchLimiter struct {
	max, perToken int

	mu      sync.Mutex
	total   int
	byToken map[string]int
}

// acquire takes a slot for token's new watch, or answers too_many_requests
// naming the limit. The caller must call release once the watch ends.
func (l *watchLimiter) acquire(token string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total >= l.max {
		return fmt.Errorf("%w: the server has %d open watches, its limit (watch.max_watches); retry later", errTooManyRequests, l.total)
	}
	if n := l.byToken[token]; n >= l.perToken {
		return fmt.Errorf("%w: token %q has %d open watches, its limit (watch.max_watches_per_token); close one or retry later", errTooManyRequests, token, n)
	}
	if l.byToken == nil {
		l.byToken = map[string]int{}
	}
	l.total++
	l.byToken[token]++
	return nil
}

func (l *watchLimiter) release(token string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.byToken[token]--; l.byToken[token] <= 0 {
		delete(l.byToken, token)
	}
}

// open returns the number of watches holding a slot.
func (l *watchLimiter) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}
