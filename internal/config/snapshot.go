package config

import "time"

// Snapshot bounds the hot snapshot streams of GET /api/v1/snapshot. Each
// stream holds a bbolt read transaction while it runs, which keeps the
// pages it reads from being reused (the file grows) and, once the file
// outgrows its initial mapping, would block writers on a remap.
type Snapshot struct {
	// MaxConcurrent is how many snapshot streams may run at once; one
	// more is answered 429 too_many_requests.
	MaxConcurrent int `json:"max_concurrent"`
	// MinBytesPerSecond and StallTimeout set the slowest client served:
	// in every StallTimeout the client must accept MinBytesPerSecond ×
	// StallTimeout bytes of the stream, or the connection is closed and
	// the read transaction released.
	MinBytesPerSecond int64    `json:"min_bytes_per_second"`
	StallTimeout      Duration `json:"stall_timeout"`
}

// defaultSnapshot: two streams, and a client slower than 64 KiB/s over
// 10 s (640 KiB per 10 s) is cut off.
func defaultSnapshot() Snapshot {
	return Snapshot{MaxConcurrent: 2, MinBytesPerSecond: 64 << 10, StallTimeout: Duration(10 * time.Second)}
}

func (s Snapshot) validate(bad func(field, format string, args ...any)) {
	if s.MaxConcurrent < 1 || s.MaxConcurrent > 64 {
		bad("snapshot.max_concurrent", "%d is out of range 1..64", s.MaxConcurrent)
	}
	if s.MinBytesPerSecond < 1<<10 || s.MinBytesPerSecond > 1<<30 {
		bad("snapshot.min_bytes_per_second", "%d is out of range 1024..1073741824", s.MinBytesPerSecond)
	}
	if d := s.StallTimeout.D(); d < 100*time.Millisecond || d > 10*time.Minute {
		bad("snapshot.stall_timeout", "%s is out of range [100ms, 10m]", d)
	}
}
