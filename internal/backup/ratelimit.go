package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// DefaultMaxRate is the bandwidth limit of `kvstore backup` and of the
// operator's backups when none is set, in bytes per second: 16 MiB/s, the
// highest of the limits tried that kept 80% of a three-node cluster's PUT
// throughput in every row of every run of the benchmark (docs/backup.md says why; docs/benchmarks.md
// has the measurement).
const DefaultMaxRate = 16 << 20

// MinMaxRate is the lowest limit the command and the operator accept
// (besides 0, no limit): 1 MiB/s. The server cuts a snapshot stream that
// is read slower than its snapshot.min_bytes_per_second (64 KiB/s by
// default).
const MinMaxRate = 1 << 20

// sleepFunc waits d, or returns ctx's error when ctx ends first.
type sleepFunc func(ctx context.Context, d time.Duration) error

// sleep is the real sleepFunc.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// limitReader is a token bucket over r: on average at most rate bytes a
// second, in bursts of at most burst bytes (a tenth of a second's worth).
// A Read takes at most burst bytes from r and, when that leaves the bucket
// in debt, waits until the debt is repaid before it returns: the caller's
// next Read, and through TCP's flow control the server's writes, are paced.
// It is not safe for concurrent use.
type limitReader struct {
	ctx    context.Context
	r      io.Reader
	rate   float64 // bytes per second
	burst  int
	tokens float64 // may be negative: a debt
	last   time.Time
	now    func() time.Time
	sleep  sleepFunc
}

// newLimitReader limits r to rate bytes a second (rate > 0); now and
// sleep are the clock (time.Now, a timer that honours ctx when nil).
func newLimitReader(ctx context.Context, r io.Reader, rate int64, now func() time.Time, sl sleepFunc) *limitReader {
	if now == nil {
		now = time.Now
	}
	if sl == nil {
		sl = sleep
	}
	burst := int(max(rate/10, 1))
	return &limitReader{ctx: ctx, r: r, rate: float64(rate), burst: burst, tokens: float64(burst), last: now(), now: now, sleep: sl}
}

func (l *limitReader) Read(p []byte) (int, error) {
	if len(p) > l.burst {
		p = p[:l.burst]
	}
	t := l.now()
	l.tokens = min(float64(l.burst), l.tokens+t.Sub(l.last).Seconds()*l.rate)
	l.last = t
	n, err := l.r.Read(p)
	l.tokens -= float64(n)
	if l.tokens < 0 {
		wait := time.Duration(-l.tokens / l.rate * float64(time.Second))
		if serr := l.sleep(l.ctx, wait); serr != nil {
			return n, serr
		}
	}
	return n, err
}

// ParseRate reads a bandwidth limit in bytes per second: a whole number
// with an optional unit, decimal (k, kB, M, MB, G, GB) or binary (Ki,
// KiB, Mi, MiB, Gi, GiB), as in "32MiB" or "50M"; "0" is no limit.
func ParseRate(s string) (int64, error) {
	i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.TrimSpace(s[i:])
	}
	mult, ok := rateUnits[unit]
	if num == "" || !ok {
		return 0, fmt.Errorf("%q is not a whole number of bytes per second with an optional unit (B, kB, MB, GB, KiB, MiB, GiB; \"32MiB\")", s)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n * mult, nil
}

var rateUnits = map[string]int64{
	"": 1, "B": 1,
	"k": 1e3, "kB": 1e3, "KB": 1e3, "M": 1e6, "MB": 1e6, "G": 1e9, "GB": 1e9,
	"Ki": 1 << 10, "KiB": 1 << 10, "Mi": 1 << 20, "MiB": 1 << 20, "Gi": 1 << 30, "GiB": 1 << 30,
}

// CheckRate checks a bandwidth limit: 0 (none) or at least MinMaxRate.
func CheckRate(rate int64) error {
	if rate != 0 && rate < MinMaxRate {
		return errors.New(FormatRate(rate) + " is below the minimum, 1MiB (or 0: no limit)")
	}
	return nil
}

// FormatRate writes a rate as ParseRate reads it: in MiB, KiB or bytes
// when it is a whole number of them.
func FormatRate(rate int64) string {
	switch {
	case rate != 0 && rate%(1<<20) == 0:
		return strconv.FormatInt(rate>>20, 10) + "MiB"
	case rate != 0 && rate%(1<<10) == 0:
		return strconv.FormatInt(rate>>10, 10) + "KiB"
	}
	return strconv.FormatInt(rate, 10)
}
