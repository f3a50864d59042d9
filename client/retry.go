package client

import (
	"context"
	"math/rand/v2"
	"time"
)

// Retry bounds the retries of one call (see Retries and failover in the
// package documentation). Zero fields take DefaultRetry's values.
type Retry struct {
	// MaxAttempts is how many times one call is sent at most, the first
	// included (default 5). 1 disables retries.
	MaxAttempts int
	// MaxElapsed is how long after a call's first attempt a retry may
	// still start (default 10s). The context may end the call sooner.
	MaxElapsed time.Duration
	// InitialBackoff is the wait before the first retry (default 50ms);
	// each next wait doubles, up to MaxBackoff (default 1s). Waits are
	// jittered (between half and all of the value). A request that never
	// reached the server goes to the next endpoint at once, without a
	// wait, while some endpoint is still untried in that call.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
}

// DefaultRetry is the Retry of a Client without WithRetry: 5 attempts
// within 10 seconds, backing off from 50ms to 1s.
func DefaultRetry() Retry {
	return Retry{MaxAttempts: 5, MaxElapsed: 10 * time.Second, InitialBackoff: 50 * time.Millisecond, MaxBackoff: time.Second}
}

func (r Retry) withDefaults() Retry {
	d := DefaultRetry()
	if r.MaxAttempts <= 0 {
		r.MaxAttempts = d.MaxAttempts
	}
	if r.MaxElapsed <= 0 {
		r.MaxElapsed = d.MaxElapsed
	}
	if r.InitialBackoff <= 0 {
		r.InitialBackoff = d.InitialBackoff
	}
	if r.MaxBackoff <= 0 {
		r.MaxBackoff = d.MaxBackoff
	}
	return r
}

// backoff is the jittered wait before retry n (1 for the first).
func (r Retry) backoff(n int) time.Duration {
	d := r.InitialBackoff
	for i := 1; i < n && d < r.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, r.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}

// sleep waits d or until ctx ends, and reports whether it waited all of d.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
