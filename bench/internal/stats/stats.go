// Package stats summarises the latency samples of one benchmark phase.
package stats

import (
	"math"
	"slices"
	"time"
)

// Summary is the outcome of one benchmark phase.
type Summary struct {
	// Ops is the number of operations that succeeded.
	Ops int
	// Errors is the number of operations that failed.
	Errors int
	// FirstError describes the first failure, if any.
	FirstError string
	// Elapsed is the wall-clock time of the phase.
	Elapsed time.Duration
	// P50 and P99 are latency percentiles of the successful operations.
	P50, P99 time.Duration
	// Max is the slowest successful operation.
	Max time.Duration
}

// OpsPerSec returns the rate of successful operations, or 0 when the
// phase took no time.
func (s Summary) OpsPerSec() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Ops) / s.Elapsed.Seconds()
}

// ErrorRate returns the fraction of attempted operations that failed.
func (s Summary) ErrorRate() float64 {
	total := s.Ops + s.Errors
	if total == 0 {
		return 0
	}
	return float64(s.Errors) / float64(total)
}

// Summarize sorts samples in place and computes a Summary from them.
func Summarize(samples []time.Duration, errors int, firstErr string, elapsed time.Duration) Summary {
	slices.Sort(samples)
	s := Summary{
		Ops:        len(samples),
		Errors:     errors,
		FirstError: firstErr,
		Elapsed:    elapsed,
		P50:        Percentile(samples, 50),
		P99:        Percentile(samples, 99),
	}
	if len(samples) > 0 {
		s.Max = samples[len(samples)-1]
	}
	return s
}

// Percentile returns the p-th percentile of sorted (ascending) samples
// using the nearest-rank method: the smallest sample such that at least
// p percent of all samples are less than or equal to it. p is clamped to
// [0, 100]; an empty slice yields 0.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	switch {
	case math.IsNaN(p) || p <= 0:
		return sorted[0]
	case p >= 100:
		return sorted[n-1]
	}
	rank := int(math.Ceil(p * float64(n) / 100))
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}
