// Package load runs one closed-loop benchmark phase: a fixed number of
// clients each issue operations back to back until the phase's time or
// operation budget is spent.
package load

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"kvstore.dev/kvstore/bench/internal/stats"
)

// Op performs operation number seq. Sequence numbers are unique within a
// phase and handed out in increasing order starting at 0.
type Op func(ctx context.Context, seq uint64) error

// Config bounds a phase.
type Config struct {
	// Clients is the number of concurrent clients.
	Clients int
	// Duration bounds the time during which new operations are started.
	Duration time.Duration
	// MaxOps bounds the number of operations started (successful or not).
	MaxOps uint64
	// OpTimeout bounds each single operation.
	OpTimeout time.Duration
	// MaxErrors stops the phase early once this many operations failed
	// (0 means no limit), so a broken target does not spin for the whole
	// phase.
	MaxErrors int64
}

func (c Config) validate() error {
	switch {
	case c.Clients < 1:
		return fmt.Errorf("load: clients must be >= 1, got %d", c.Clients)
	case c.Duration <= 0:
		return fmt.Errorf("load: duration must be > 0, got %v", c.Duration)
	case c.MaxOps < 1:
		return errors.New("load: max ops must be >= 1")
	case c.OpTimeout <= 0:
		return fmt.Errorf("load: op timeout must be > 0, got %v", c.OpTimeout)
	}
	return nil
}

// Result is the outcome of Run.
type Result struct {
	stats.Summary
	// Issued is the number of sequence numbers handed out, i.e. one past
	// the highest seq passed to an Op.
	Issued uint64
}

// Run drives newOp's operations with cfg.Clients concurrent clients.
// newOp is called once per client (with the client's index) so each
// client can own its buffers. Run returns when every client has stopped;
// an operation in flight when the time budget ends is allowed to finish
// (bounded by OpTimeout) and is counted. Cancelling ctx stops the phase
// and makes Run return ctx's error.
func Run(ctx context.Context, cfg Config, newOp func(client int) Op) (Result, error) {
	if err := cfg.validate(); err != nil {
		return Result{}, err
	}
	var (
		next     atomic.Uint64
		errCount atomic.Int64
		firstErr atomic.Pointer[string]
		wg       sync.WaitGroup
	)
	perClient := make([][]time.Duration, cfg.Clients)
	ops := make([]Op, cfg.Clients)
	for i := range ops {
		ops[i] = newOp(i)
	}
	start := time.Now()
	deadline := start.Add(cfg.Duration)
	for i := range cfg.Clients {
		wg.Go(func() {
			samples := make([]time.Duration, 0, 4096)
			op := ops[i]
			for ctx.Err() == nil {
				if cfg.MaxErrors > 0 && errCount.Load() >= cfg.MaxErrors {
					break
				}
				t0 := time.Now()
				if !t0.Before(deadline) {
					break
				}
				seq := next.Add(1) - 1
				if seq >= cfg.MaxOps {
					break
				}
				opCtx, cancel := context.WithTimeout(ctx, cfg.OpTimeout)
				err := op(opCtx, seq)
				cancel()
				if err != nil {
					if ctx.Err() != nil {
						break // interrupted, not a target failure
					}
					errCount.Add(1)
					msg := fmt.Sprintf("op %d: %v", seq, err)
					firstErr.CompareAndSwap(nil, &msg)
					continue
				}
				samples = append(samples, time.Since(t0))
			}
			perClient[i] = samples
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("load: phase interrupted: %w", err)
	}
	total := 0
	for _, s := range perClient {
		total += len(s)
	}
	all := make([]time.Duration, 0, total)
	for _, s := range perClient {
		all = append(all, s...)
	}
	var first string
	if p := firstErr.Load(); p != nil {
		first = *p
	}
	issued := min(next.Load(), cfg.MaxOps)
	return Result{
		Summary: stats.Summarize(all, int(errCount.Load()), first, elapsed),
		Issued:  issued,
	}, nil
}
