package backupcmd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/robfig/cron/v3"

	"kvstore.dev/kvstore/internal/backup"
)

// Snapshotter starts a snapshot stream; backup.Source is the real one.
type Snapshotter interface {
	Snapshot(ctx context.Context) (io.ReadCloser, backup.Info, error)
}

// Runner takes backups: one by Once, or one per schedule tick by Schedule.
// Its fields are set before the first call and not changed after; Once
// must not run concurrently with itself.
type Runner struct {
	Source    Snapshotter
	Dest      backup.Destination
	Retention backup.Retention
	Timeout   time.Duration // bounds one backup; 0 is none
	// MaxRate limits how fast a backup reads the snapshot, in bytes per
	// second (backup.Info.MaxBytesPerSecond); 0 is no limit.
	MaxRate int64
	Log     *slog.Logger
	Metrics *Metrics
	// Now and After are the clock (time.Now, time.After by default): test
	// seams.
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time

	loaded bool // LoadLast ran
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Once takes one backup and applies the retention; it returns the
// backup's manifest and those of the backups the retention deleted. A
// failed backup is logged at error, counted and timestamped in the
// metrics, and returned (with a zero manifest); a failed retention run
// (after a backup that succeeded) is logged at error, counted, and
// returned too, with the manifest.
func (r *Runner) Once(ctx context.Context) (backup.Manifest, []backup.Manifest, error) {
	if r.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.Timeout)
		defer cancel()
	}
	start := r.now()
	m, err := r.take(ctx)
	if err != nil {
		r.Metrics.Failures.Inc()
		r.Metrics.LastFailure.Set(float64(r.now().Unix()))
		r.Log.ErrorContext(ctx, "backup failed", "destination", r.Dest.URI(), "duration_seconds", r.now().Sub(start).Seconds(), "err", err)
		return backup.Manifest{}, nil, err
	}
	took := r.now().Sub(start)
	r.Metrics.Successes.Inc()
	r.Metrics.LastSuccess.Set(float64(m.CompletedAt.Unix()))
	r.Metrics.LastSize.Set(float64(m.SizeBytes))
	r.Metrics.LastDuration.Set(took.Seconds())
	r.Log.InfoContext(ctx, "backup complete", "name", m.Name, "destination", r.Dest.URI(), "size_bytes", m.SizeBytes,
		"sha256", m.SHA256, "revision", m.Revision, "duration_seconds", took.Seconds(), "max_rate_bytes_per_second", r.MaxRate)
	deleted, err := backup.Prune(ctx, r.Dest, r.Retention, r.now())
	for _, d := range deleted {
		r.Metrics.Pruned.Inc()
		r.Log.InfoContext(ctx, "backup pruned", "name", d.Name, "destination", r.Dest.URI(), "started_at", d.StartedAt, "retention", r.Retention.String())
	}
	if err != nil {
		r.Metrics.PruneFailures.Inc()
		r.Log.ErrorContext(ctx, "retention failed", "destination", r.Dest.URI(), "retention", r.Retention.String(), "err", err)
		return m, deleted, fmt.Errorf("backup %s succeeded, but retention failed: %w", m.Name, err)
	}
	return m, deleted, nil
}

func (r *Runner) take(ctx context.Context) (backup.Manifest, error) {
	body, info, err := r.Source.Snapshot(ctx)
	if err != nil {
		return backup.Manifest{}, fmt.Errorf("snapshot: %w", err)
	}
	defer body.Close()
	info.Now, info.MaxBytesPerSecond = r.Now, r.MaxRate
	return backup.Write(ctx, r.Dest, body, info)
}

// LoadLast sets the last-success metrics from the destination's newest
// backup (a failure to list is logged at warn). Schedule calls it unless
// it ran already.
func (r *Runner) LoadLast(ctx context.Context) {
	r.loaded = true
	if m, err := backup.Latest(ctx, r.Dest); err == nil {
		r.Metrics.LastSuccess.Set(float64(m.CompletedAt.Unix()))
		r.Metrics.LastSize.Set(float64(m.SizeBytes))
	} else {
		r.Log.WarnContext(ctx, "no previous backup found", "destination", r.Dest.URI(), "err", err)
	}
}

// Schedule takes a backup at every time sched names, until ctx is done
// (then it returns nil). Suspended, it takes none but keeps running. It
// first sets the last-success metrics from the destination's newest
// backup, so that a restarted process does not report "never", and, not
// suspended, the schedule's period and start (the alert rule's inputs). A
// failed backup does not stop the schedule.
func (r *Runner) Schedule(ctx context.Context, sched cron.Schedule, suspend bool) error {
	after := r.After
	if after == nil {
		after = time.After
	}
	if !r.loaded {
		r.LoadLast(ctx)
	}
	if suspend {
		r.Metrics.Suspended.Set(1)
		r.Log.WarnContext(ctx, "backup schedule suspended: no backups are taken", "destination", r.Dest.URI())
	} else if p := backup.SchedulePeriod(sched, r.now()); p > 0 {
		r.Metrics.SchedulePeriod.WithLabelValues().Set(p.Seconds())
		r.Metrics.ScheduleStart.WithLabelValues().Set(float64(r.now().Unix()))
	}
	for {
		next := sched.Next(r.now())
		if next.IsZero() {
			r.Log.ErrorContext(ctx, "the schedule names no future time: no backups are taken", "destination", r.Dest.URI())
			<-ctx.Done()
			return nil
		}
		if !suspend {
			r.Log.InfoContext(ctx, "next backup", "at", next.UTC(), "destination", r.Dest.URI())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-after(next.Sub(r.now())):
		}
		if !suspend {
			_, _, _ = r.Once(ctx) // logged and counted
		}
	}
}
