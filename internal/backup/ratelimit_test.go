package backup

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeClock is a clock that only sleep moves (and step, which plays a slow
// consumer); it records the waits asked for.
type fakeClock struct {
	t     time.Time
	waits []time.Duration
	err   error // sleep's error, when set
}

func (c *fakeClock) now() time.Time { return c.t }

func (c *fakeClock) sleep(_ context.Context, d time.Duration) error {
	if c.err != nil {
		return c.err
	}
	c.waits = append(c.waits, d)
	c.t = c.t.Add(d)
	return nil
}

// chunkReader returns at most n bytes per Read, and moves clk by step
// before each (a consumer that takes its time).
type chunkReader struct {
	r    io.Reader
	n    int
	clk  *fakeClock
	step time.Duration
}

func (c *chunkReader) Read(p []byte) (int, error) {
	c.clk.t = c.clk.t.Add(c.step)
	return c.r.Read(p[:min(len(p), c.n)])
}

// readAll reads r to its end with a 1 MiB buffer (io.ReadAll's smaller
// first reads would split the bursts).
func readAll(r io.Reader) ([]byte, error) {
	var out []byte
	buf := make([]byte, 1<<20)
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

func repeat(d time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

// TestLimitReader checks the waits the token bucket computes, on a fake
// clock: the first burst is free, then every byte costs 1/rate seconds,
// and a consumer slower than the rate waits for nothing.
func TestLimitReader(t *testing.T) {
	tests := map[string]struct {
		size  int
		rate  int64
		chunk int           // bytes per Read of the source
		step  time.Duration // time the consumer takes per Read
		want  []time.Duration
	}{
		// burst 100 bytes: ten Reads of 100, nine of them in debt.
		"full reads": {size: 1000, rate: 1000, chunk: 1 << 20, want: repeat(100*time.Millisecond, 9)},
		// 30-byte reads: 100, 70, 40, 10 left, then 20 in debt, then 30 each.
		"short reads": {size: 300, rate: 1000, chunk: 30,
			want: append([]time.Duration{20 * time.Millisecond}, repeat(30*time.Millisecond, 6)...)},
		// The consumer takes 200 ms a Read: the bucket is full again every time.
		"a slow consumer": {size: 1000, rate: 1000, chunk: 100, step: 200 * time.Millisecond},
		// It takes 50 ms: half of each burst is earned, the other half waited for.
		"a consumer at half the rate": {size: 500, rate: 1000, chunk: 100, step: 50 * time.Millisecond,
			want: repeat(50*time.Millisecond, 4)},
		"within the first burst": {size: 64, rate: 1 << 20, chunk: 1 << 20},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			clk := &fakeClock{t: time.Unix(1e9, 0)}
			data := bytes.Repeat([]byte("x"), tc.size)
			src := &chunkReader{r: bytes.NewReader(data), n: tc.chunk, clk: clk, step: tc.step}
			lr := newLimitReader(context.Background(), src, tc.rate, clk.now, clk.sleep)
			got, err := readAll(lr)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read %d bytes, %v; want the %d bytes", len(got), err, tc.size)
			}
			if !slices.Equal(clk.waits, tc.want) {
				t.Errorf("waits %v, want %v", clk.waits, tc.want)
			}
		})
	}
}

// TestLimitReaderCancel: a wait that ends with the context's error ends
// the stream with it.
func TestLimitReaderCancel(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0), err: context.Canceled}
	lr := newLimitReader(context.Background(), strings.NewReader(strings.Repeat("x", 1000)), 1000, clk.now, clk.sleep)
	_, err := io.ReadAll(lr)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("ReadAll = %v, want context.Canceled", err)
	}
}

func TestParseRate(t *testing.T) {
	ok := map[string]int64{
		"0": 0, "1048576": 1 << 20, "32MiB": 32 << 20, "32Mi": 32 << 20, "512KiB": 512 << 10, "1GiB": 1 << 30,
		"50M": 50e6, "50MB": 50e6, "8kB": 8000, "100B": 100, "64 MiB": 64 << 20,
	}
	for in, want := range ok {
		if got, err := ParseRate(in); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "32mib", "1.5MiB", "-1MiB", "32 MiB/s", "99999999999GiB"} {
		if got, err := ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) = %d, want an error", in, got)
		}
	}
	for rate, s := range map[int64]string{0: "0", 64 << 20: "64MiB", 1536 << 10: "1536KiB", 1000001: "1000001"} {
		if got := FormatRate(rate); got != s {
			t.Errorf("FormatRate(%d) = %q, want %q", rate, got, s)
		}
		if back, err := ParseRate(s); err != nil || back != rate {
			t.Errorf("ParseRate(FormatRate(%d)) = %d, %v", rate, back, err)
		}
	}
	for rate, ok := range map[int64]bool{0: true, MinMaxRate: true, DefaultMaxRate: true, MinMaxRate - 1: false, -1: false} {
		if err := CheckRate(rate); (err == nil) != ok {
			t.Errorf("CheckRate(%d) = %v", rate, err)
		}
	}
}
