package config

import (
	"strings"
	"testing"
	"time"
)

func TestSnapshotValidate(t *testing.T) {
	tests := map[string]struct {
		mutate func(*Snapshot)
		want   string // "" = valid
	}{
		"defaults":              {func(*Snapshot) {}, ""},
		"no streams":            {func(s *Snapshot) { s.MaxConcurrent = 0 }, "snapshot.max_concurrent"},
		"too slow a floor":      {func(s *Snapshot) { s.MinBytesPerSecond = 10 }, "snapshot.min_bytes_per_second"},
		"stall timeout too big": {func(s *Snapshot) { s.StallTimeout = Duration(time.Hour) }, "snapshot.stall_timeout"},
		"stall timeout zero":    {func(s *Snapshot) { s.StallTimeout = 0 }, "snapshot.stall_timeout"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := Default()
			tc.mutate(&cfg.Snapshot)
			err := cfg.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate: %v, want an error naming %s", err, tc.want)
			}
		})
	}
}
