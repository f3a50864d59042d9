package procstat

import (
	"os"
	"testing"
)

func TestParseSystemCPU(t *testing.T) {
	tests := []struct {
		name    string
		stat    string
		want    SystemCPU
		wantErr bool
	}{
		{
			name: "typical",
			stat: "cpu  100 5 50 1000 20 3 2 1 0 0\ncpu0 50 2 25 500 10 1 1 0 0 0\n",
			want: SystemCPU{Busy: 100 + 5 + 50 + 3 + 2 + 1, Total: 100 + 5 + 50 + 3 + 2 + 1 + 1000 + 20},
		},
		{name: "per-cpu line first", stat: "cpu0 1 2 3 4 5 6 7 8\n", wantErr: true},
		{name: "short", stat: "cpu 1 2 3\n", wantErr: true},
		{name: "not a number", stat: "cpu 1 2 3 x 5 6 7 8\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSystemCPU(tt.stat)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseProcessCPU(t *testing.T) {
	tests := []struct {
		name    string
		stat    string
		want    uint64
		wantErr bool
	}{
		{
			name: "plain name",
			stat: "1234 (kvstore) S 1 1234 1234 0 -1 4194560 500 0 0 0 70 30 0 0 20 0 8 0 100 0 0",
			want: 100,
		},
		{
			name: "name with spaces and parens",
			stat: "1234 (a) b (c) R 1 1234 1234 0 -1 4194560 500 0 0 0 7 3 0 0 20 0 8 0 100 0 0",
			want: 10,
		},
		{name: "no name", stat: "1234 kvstore S 1", wantErr: true},
		{name: "truncated", stat: "1234 (kvstore) S 1 2 3", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseProcessCPU(tt.stat)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestBackgroundShare(t *testing.T) {
	tests := []struct {
		name           string
		sys0, sys1     SystemCPU
		procs0, procs1 uint64
		want           float64
	}{
		{"quiet machine", SystemCPU{0, 0}, SystemCPU{100, 200}, 0, 100, 0},
		{"quarter busy elsewhere", SystemCPU{0, 0}, SystemCPU{150, 200}, 0, 100, 0.25},
		{"no time passed", SystemCPU{5, 10}, SystemCPU{5, 10}, 0, 0, 0},
		{"clamped at 0", SystemCPU{0, 0}, SystemCPU{90, 200}, 0, 100, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := BackgroundShare(tt.sys0, tt.sys1, tt.procs0, tt.procs1); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBackgroundSelf(t *testing.T) {
	b, err := StartBackground(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	share, err := b.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if share < 0 || share > 1 {
		t.Errorf("share = %v out of [0, 1]", share)
	}
}
