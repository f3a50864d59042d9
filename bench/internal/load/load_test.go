package load

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestRunBounds(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name       string
		cfg        Config
		failEvery  uint64 // 0: never fail
		wantOps    int
		wantErrors int
		wantIssued uint64
	}{
		{
			name:    "count bound",
			cfg:     Config{Clients: 4, Duration: time.Minute, MaxOps: 1000, OpTimeout: time.Second},
			wantOps: 1000, wantIssued: 1000,
		},
		{
			name:    "single client",
			cfg:     Config{Clients: 1, Duration: time.Minute, MaxOps: 10, OpTimeout: time.Second},
			wantOps: 10, wantIssued: 10,
		},
		{
			name:      "errors are counted, not timed",
			cfg:       Config{Clients: 2, Duration: time.Minute, MaxOps: 100, OpTimeout: time.Second},
			failEvery: 10,
			wantOps:   90, wantErrors: 10, wantIssued: 100,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			seen := map[uint64]bool{}
			res, err := Run(context.Background(), tt.cfg, func(int) Op {
				return func(_ context.Context, seq uint64) error {
					mu.Lock()
					defer mu.Unlock()
					if seen[seq] {
						t.Errorf("seq %d issued twice", seq)
					}
					seen[seq] = true
					if tt.failEvery > 0 && seq%tt.failEvery == 0 {
						return errBoom
					}
					return nil
				}
			})
			if err != nil {
				t.Fatalf("Run() = %v", err)
			}
			if res.Ops != tt.wantOps || res.Errors != tt.wantErrors || res.Issued != tt.wantIssued {
				t.Errorf("ops/errors/issued = %d/%d/%d, want %d/%d/%d",
					res.Ops, res.Errors, res.Issued, tt.wantOps, tt.wantErrors, tt.wantIssued)
			}
			if tt.wantErrors > 0 && res.FirstError == "" {
				t.Error("FirstError is empty")
			}
		})
	}
}

func TestRunTimeBound(t *testing.T) {
	cfg := Config{Clients: 3, Duration: 50 * time.Millisecond, MaxOps: 1 << 62, OpTimeout: time.Second}
	start := time.Now()
	res, err := Run(context.Background(), cfg, func(int) Op {
		return func(ctx context.Context, _ uint64) error {
			<-time.After(time.Millisecond) // a slow operation
			return nil
		}
	})
	if err != nil {
		t.Fatalf("Run() = %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Run took %v, want about 50ms", took)
	}
	if res.Ops == 0 || res.P50 < time.Millisecond {
		t.Errorf("implausible result %+v", res.Summary)
	}
}

func TestRunMaxErrors(t *testing.T) {
	cfg := Config{Clients: 2, Duration: time.Minute, MaxOps: 1 << 62, OpTimeout: time.Second, MaxErrors: 50}
	res, err := Run(context.Background(), cfg, func(int) Op {
		return func(context.Context, uint64) error { return errors.New("down") }
	})
	if err != nil {
		t.Fatalf("Run() = %v", err)
	}
	if res.Errors < 50 || res.Errors > 52 {
		t.Errorf("errors = %d, want about 50", res.Errors)
	}
}

func TestRunCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cfg := Config{Clients: 2, Duration: time.Minute, MaxOps: 10, OpTimeout: time.Second}
	if _, err := Run(ctx, cfg, func(int) Op { return func(context.Context, uint64) error { return nil } }); err == nil {
		t.Fatal("Run() with cancelled context = nil error")
	}
}

func TestRunInvalidConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no clients", Config{Clients: 0, Duration: time.Second, MaxOps: 1, OpTimeout: time.Second}},
		{"no duration", Config{Clients: 1, Duration: 0, MaxOps: 1, OpTimeout: time.Second}},
		{"no ops", Config{Clients: 1, Duration: time.Second, MaxOps: 0, OpTimeout: time.Second}},
		{"no op timeout", Config{Clients: 1, Duration: time.Second, MaxOps: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Run(context.Background(), tt.cfg, nil); err == nil {
				t.Error("Run() = nil error, want validation error")
			}
		})
	}
}
