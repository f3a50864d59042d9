package backupcmd

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/robfig/cron/v3"

	"kvstore.dev/kvstore/internal/backup"
)

// fakeSource serves snapshots from memory, or fails with err.
type fakeSource struct {
	mu   sync.Mutex
	data []byte
	err  error
	rev  uint64
}

func (f *fakeSource) Snapshot(context.Context) (io.ReadCloser, backup.Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, backup.Info{}, f.err
	}
	f.rev++
	return io.NopCloser(bytes.NewReader(f.data)), backup.Info{Revision: f.rev, ServerVersion: "v-test"}, nil
}

// fakeClock moves a minute at each reading.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Minute)
	return c.t
}

// syncBuffer is a log buffer safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newTestRunner(t *testing.T, src Snapshotter, dest backup.Destination, ret backup.Retention) (*Runner, *syncBuffer) {
	logs := &syncBuffer{}
	clk := &fakeClock{t: time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)}
	return &Runner{
		Source: src, Dest: dest, Retention: ret, Timeout: time.Minute,
		Log:     slog.New(slog.NewTextHandler(logs, nil)),
		Metrics: NewMetrics(),
		Now:     clk.Now,
	}, logs
}

func TestOnce(t *testing.T) {
	ctx := context.Background()
	src := &fakeSource{data: []byte("a snapshot's bytes")}
	r, logs := newTestRunner(t, src, backup.NewDir(t.TempDir()), backup.Retention{KeepLast: 2})
	for range 3 {
		if _, _, err := r.Once(ctx); err != nil {
			t.Fatal(err)
		}
	}
	ms, err := backup.List(ctx, r.Dest)
	if err != nil || len(ms) != 2 || ms[0].Revision != 3 {
		t.Fatalf("after 3 backups keeping 2: List = %v, %v", names(ms), err)
	}
	m := r.Metrics
	if got := testutil.ToFloat64(m.LastSuccess); got != float64(ms[0].CompletedAt.Unix()) {
		t.Errorf("last success = %v, want %d", got, ms[0].CompletedAt.Unix())
	}
	if got := testutil.ToFloat64(m.LastSize); got != float64(len(src.data)) {
		t.Errorf("last size = %v, want %d", got, len(src.data))
	}
	if s, f, p := testutil.ToFloat64(m.Successes), testutil.ToFloat64(m.Failures), testutil.ToFloat64(m.Pruned); s != 3 || f != 0 || p != 1 {
		t.Errorf("successes, failures, pruned = %v, %v, %v; want 3, 0, 1", s, f, p)
	}
	for _, want := range []string{"msg=\"backup complete\"", "name=" + ms[0].Name, "sha256=" + ms[0].SHA256, "size_bytes=18", "duration_seconds=", "msg=\"backup pruned\""} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}

	// A failure is loud: an error, at error in the log, counted and
	// timestamped; the last success stays.
	src.err = errors.New("GET http://kv/api/v1/snapshot: connection refused")
	lastSuccess := testutil.ToFloat64(m.LastSuccess)
	if _, _, err := r.Once(ctx); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Once with a failing source = %v", err)
	}
	if f := testutil.ToFloat64(m.Failures); f != 1 {
		t.Errorf("failures = %v, want 1", f)
	}
	if got := testutil.ToFloat64(m.LastFailure); got <= lastSuccess {
		t.Errorf("last failure = %v, want after the last success %v", got, lastSuccess)
	}
	if got := testutil.ToFloat64(m.LastSuccess); got != lastSuccess {
		t.Errorf("last success moved to %v on a failure", got)
	}
	if !strings.Contains(logs.String(), "level=ERROR msg=\"backup failed\"") {
		t.Errorf("log lacks the failure at error:\n%s", logs)
	}
}

func names(ms []backup.Manifest) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return out
}

func TestSchedule(t *testing.T) {
	sched, err := cronParser.Parse("@every 1h")
	if err != nil {
		t.Fatal(err)
	}
	for name, suspend := range map[string]bool{"running": false, "suspended": true} {
		t.Run(name, func(t *testing.T) {
			dest := backup.NewDir(t.TempDir())
			src := &fakeSource{data: []byte("snapshot")}
			r, logs := newTestRunner(t, src, dest, backup.Retention{})
			// One backup exists before the process starts: the metric
			// starts from it, not from "never".
			before, err := backup.Write(context.Background(), dest, strings.NewReader("earlier"), backup.Info{Now: r.Now})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ticks := 0
			var waits []time.Duration
			r.After = func(d time.Duration) <-chan time.Time {
				if ticks == 0 && testutil.ToFloat64(r.Metrics.LastSuccess) != float64(before.CompletedAt.Unix()) {
					t.Errorf("at start, last success = %v, want the earlier backup's %d", testutil.ToFloat64(r.Metrics.LastSuccess), before.CompletedAt.Unix())
				}
				waits = append(waits, d)
				if ticks++; ticks > 3 {
					cancel()
				}
				c := make(chan time.Time, 1)
				c <- time.Time{}
				return c
			}
			if err := r.Schedule(ctx, sched, suspend); err != nil {
				t.Fatal(err)
			}
			ms, _ := backup.List(context.Background(), dest)
			want := 4 // the earlier one and one per tick
			if suspend {
				want = 1
				if testutil.ToFloat64(r.Metrics.Suspended) != 1 || !strings.Contains(logs.String(), "suspended") {
					t.Errorf("suspended: metric %v, log:\n%s", testutil.ToFloat64(r.Metrics.Suspended), logs)
				}
			}
			if len(ms) != want {
				t.Errorf("backups = %v, want %d", names(ms), want)
			}
			// The alert rule's inputs: exported while the schedule runs,
			// absent while it is suspended.
			wantSeries := map[bool]int{false: 1, true: 0}[suspend]
			if n := testutil.CollectAndCount(r.Metrics.SchedulePeriod) + testutil.CollectAndCount(r.Metrics.ScheduleStart); n != 2*wantSeries {
				t.Errorf("period and start series: %d, want %d", n, 2*wantSeries)
			}
			if !suspend {
				if p := testutil.ToFloat64(r.Metrics.SchedulePeriod.WithLabelValues()); p != 3600 {
					t.Errorf("period %v, want 3600", p)
				}
				if st := testutil.ToFloat64(r.Metrics.ScheduleStart.WithLabelValues()); st <= 0 {
					t.Errorf("start %v", st)
				}
			}
			for _, w := range waits {
				if w <= 0 || w > time.Hour {
					t.Errorf("waited %v for an hourly schedule", w)
				}
			}
		})
	}
	t.Run("never", func(t *testing.T) {
		never, err := cronParser.Parse("0 0 30 2 *") // February 30th
		if err != nil {
			t.Fatal(err)
		}
		r, logs := newTestRunner(t, &fakeSource{data: []byte("x")}, backup.NewDir(t.TempDir()), backup.Retention{})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := r.Schedule(ctx, never, false); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(logs.String(), "no future time") {
			t.Errorf("log:\n%s", logs)
		}
	})
	var _ cron.Schedule = sched
}
