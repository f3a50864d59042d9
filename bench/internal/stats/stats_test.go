package stats

import (
	"math"
	"testing"
	"time"
)

func ms(v ...int) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x) * time.Millisecond
	}
	return out
}

func seq(n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(i+1) * time.Millisecond
	}
	return out
}

func TestPercentile(t *testing.T) {
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"single p50", ms(7), 50, 7 * time.Millisecond},
		{"single p99", ms(7), 99, 7 * time.Millisecond},
		{"two p50 is lower", ms(1, 2), 50, 1 * time.Millisecond},
		{"two p51 is upper", ms(1, 2), 51, 2 * time.Millisecond},
		{"four p50", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"five p50 is median", ms(1, 2, 3, 4, 5), 50, 3 * time.Millisecond},
		{"100 p50", seq(100), 50, 50 * time.Millisecond},
		{"100 p99", seq(100), 99, 99 * time.Millisecond},
		{"1000 p99", seq(1000), 99, 990 * time.Millisecond},
		{"101 p99 rounds up", seq(101), 99, 100 * time.Millisecond},
		{"p0 is min", ms(3, 4, 9), 0, 3 * time.Millisecond},
		{"negative clamps to min", ms(3, 4, 9), -5, 3 * time.Millisecond},
		{"p100 is max", ms(3, 4, 9), 100, 9 * time.Millisecond},
		{"above 100 clamps to max", ms(3, 4, 9), 250, 9 * time.Millisecond},
		{"NaN is min", ms(3, 4, 9), math.NaN(), 3 * time.Millisecond},
		{"tiny p picks first", seq(10), 0.001, 1 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("Percentile(%v, %v) = %v, want %v", tt.sorted, tt.p, got, tt.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	tests := []struct {
		name     string
		samples  []time.Duration
		errors   int
		elapsed  time.Duration
		wantP50  time.Duration
		wantP99  time.Duration
		wantMax  time.Duration
		wantRate float64
		wantErr  float64
	}{
		{
			name:    "unsorted input",
			samples: ms(5, 1, 4, 2, 3), elapsed: time.Second,
			wantP50: 3 * time.Millisecond, wantP99: 5 * time.Millisecond, wantMax: 5 * time.Millisecond,
			wantRate: 5,
		},
		{
			name:    "with errors",
			samples: ms(1, 1, 1), errors: 1, elapsed: 2 * time.Second,
			wantP50: time.Millisecond, wantP99: time.Millisecond, wantMax: time.Millisecond,
			wantRate: 1.5, wantErr: 0.25,
		},
		{name: "nothing", elapsed: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Summarize(tt.samples, tt.errors, "", tt.elapsed)
			if s.P50 != tt.wantP50 || s.P99 != tt.wantP99 || s.Max != tt.wantMax {
				t.Errorf("p50/p99/max = %v/%v/%v, want %v/%v/%v", s.P50, s.P99, s.Max, tt.wantP50, tt.wantP99, tt.wantMax)
			}
			if got := s.OpsPerSec(); got != tt.wantRate {
				t.Errorf("OpsPerSec() = %v, want %v", got, tt.wantRate)
			}
			if got := s.ErrorRate(); got != tt.wantErr {
				t.Errorf("ErrorRate() = %v, want %v", got, tt.wantErr)
			}
		})
	}
}
