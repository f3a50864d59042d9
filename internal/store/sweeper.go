package store

import (
	"context"
	"log/slog"
	"time"
)

// Sweeper removes expired keys by proposing OpExpire commands through the
// same path as every other write, so that in a cluster only the leader's
// sweeper (the one whose proposals commit) expires keys. Reads already hide
// expired keys; the sweeper reclaims their space and emits their events.
type Sweeper struct {
	Store    *Store
	Proposer Proposer
	Interval time.Duration    // time between sweeps; default 1s
	Batch    int              // keys per proposal; default 1000
	Clock    func() time.Time // default time.Now
	Logger   *slog.Logger     // default slog.Default()
	// Active, if set, is asked before each sweep; a sweeper that is not
	// active (a follower's) skips it. Default: always active.
	Active func() bool
}

// Run sweeps until ctx is done.
func (w *Sweeper) Run(ctx context.Context) {
	interval, batch, clock, log := w.Interval, w.Batch, w.Clock, w.Logger
	if interval <= 0 {
		interval = time.Second
	}
	if batch <= 0 {
		batch = 1000
	}
	if clock == nil {
		clock = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if w.Active != nil && !w.Active() {
			continue
		}
		for {
			n, err := w.SweepOnce(ctx, clock(), batch)
			if err != nil {
				if ctx.Err() == nil {
					log.Warn("ttl sweep failed", "err", err)
				}
				break
			}
			if n < batch {
				break
			}
		}
	}
}

// SweepOnce proposes the expiry of up to batch keys expired at now and
// returns how many it found. Each expiry applies only if the key is still
// at the revision read and has expired by the clock the log stamps the
// command with (clock.go), which the sweeper does not set.
func (w *Sweeper) SweepOnce(ctx context.Context, now time.Time, batch int) (int, error) {
	keys, err := w.Store.Expired(now, batch)
	if err != nil || len(keys) == 0 {
		return 0, err
	}
	cmds := make([]Command, len(keys))
	for i, k := range keys {
		cmds[i] = Command{Op: OpExpire, Key: k.Key, IfRevision: k.Revision}
	}
	if _, err := w.Proposer.Propose(ctx, cmds...); err != nil {
		return 0, err
	}
	return len(keys), nil
}
