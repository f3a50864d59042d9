package backup

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Retention says which backups Prune keeps. A backup is deleted when it is
// not among the newest KeepLast, or when it started more than MaxAge ago;
// a zero field sets no limit. The newest backup is always kept, whatever
// the limits say.
type Retention struct {
	KeepLast int           `json:"keep_last,omitempty"`
	MaxAge   time.Duration `json:"max_age,omitempty"`
}

// Validate checks the limits.
func (r Retention) Validate() error {
	if r.KeepLast < 0 {
		return fmt.Errorf("%w retention keep_last: %d is negative", ErrInvalid, r.KeepLast)
	}
	if r.MaxAge < 0 {
		return fmt.Errorf("%w retention max_age: %s is negative", ErrInvalid, r.MaxAge)
	}
	return nil
}

// String is "keep last N, max age D" for logs.
func (r Retention) String() string {
	var parts []string
	if r.KeepLast > 0 {
		parts = append(parts, "keep last "+strconv.Itoa(r.KeepLast))
	}
	if r.MaxAge > 0 {
		parts = append(parts, "max age "+FormatAge(r.MaxAge))
	}
	if len(parts) == 0 {
		return "keep all"
	}
	return strings.Join(parts, ", ")
}

// Expired returns the backups of ms (newest first, as List returns them)
// that r deletes at now. It is pure: Prune acts on it.
func (r Retention) Expired(ms []Manifest, now time.Time) []Manifest {
	var out []Manifest
	for i, m := range ms {
		if i == 0 {
			continue // the newest, always kept
		}
		if (r.KeepLast > 0 && i >= r.KeepLast) || (r.MaxAge > 0 && now.Sub(m.StartedAt) > r.MaxAge) {
			out = append(out, m)
		}
	}
	return out
}

// Prune deletes the backups of d that r expires at now, manifest first
// (so that a backup half deleted is not listed), and returns those it
// deleted. It goes on past a failed deletion and returns every error.
func Prune(ctx context.Context, d Destination, r Retention, now time.Time) ([]Manifest, error) {
	if r.KeepLast == 0 && r.MaxAge == 0 {
		return nil, nil
	}
	ms, err := List(ctx, d)
	if err != nil {
		return nil, err
	}
	var deleted []Manifest
	var errs []error
	for _, m := range r.Expired(ms, now) {
		if err := d.Delete(ctx, m.Name+manifestExt); err != nil {
			errs = append(errs, fmt.Errorf("prune backup %s: %w", m.Name, err))
			continue
		}
		if err := d.Delete(ctx, m.Object); err != nil {
			errs = append(errs, fmt.Errorf("prune backup %s (manifest deleted): %w", m.Name, err))
		}
		deleted = append(deleted, m)
	}
	return deleted, errors.Join(errs...)
}

// ageUnits are the units of ParseAge.
var ageUnits = []struct {
	suffix string
	d      time.Duration
}{
	{"w", 7 * 24 * time.Hour}, {"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second},
}

// ParseAge parses a retention age: a whole number and one unit, s, m, h,
// d (24 hours) or w (7 days): "30d", "12h", "2w". "0" is no limit.
func ParseAge(s string) (time.Duration, error) {
	if s == "0" || s == "" {
		return 0, nil
	}
	for _, u := range ageUnits {
		num, ok := strings.CutSuffix(s, u.suffix)
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(num, 10, 31)
		if err != nil || n == 0 {
			break
		}
		return time.Duration(n) * u.d, nil
	}
	return 0, fmt.Errorf("%w age %q: want a whole number and a unit, s, m, h, d or w (\"30d\")", ErrInvalid, s)
}

// FormatAge writes d in ParseAge's form, in the largest unit that divides it.
func FormatAge(d time.Duration) string {
	for _, u := range ageUnits {
		if d >= u.d && d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + u.suffix
		}
	}
	return d.String()
}
