package report

import (
	"fmt"
	"strconv"
	"time"
)

// Rate formats an operations-per-second figure with thousands separators.
func Rate(opsPerSec float64) string {
	return Count(uint64(opsPerSec + 0.5))
}

// Count formats n with comma thousands separators.
func Count(n uint64) string {
	s := strconv.FormatUint(n, 10)
	out := make([]byte, 0, len(s)+len(s)/3)
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// Latency formats d in microseconds below 1 ms and in milliseconds above.
func Latency(d time.Duration) string {
	if d < time.Millisecond {
		return fmt.Sprintf("%d µs", d.Microseconds())
	}
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

// NoisyBackground is the share of CPU used by other processes above
// which a run is flagged as noisy.
const NoisyBackground = 0.05

// Percent formats a fraction as a whole percentage.
func Percent(f float64) string {
	return fmt.Sprintf("%.0f%%", f*100)
}

// Bytes formats b in decimal megabytes (1 MB = 10^6 bytes).
func Bytes(b uint64) string {
	return fmt.Sprintf("%.1f MB", float64(b)/1e6)
}
