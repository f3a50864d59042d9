package procstat

import (
	"math"
	"os"
	"testing"
)

func TestComputeShares(t *testing.T) {
	sys0 := SystemCPU{Busy: 1000, Total: 5000}
	tests := []struct {
		name       string
		sys1       SystemCPU
		used       []uint64
		wantGroups []float64
		wantOther  float64
	}{
		{
			name: "typical", sys1: SystemCPU{Busy: 1800, Total: 6000},
			used: []uint64{300, 200, 100}, wantGroups: []float64{0.3, 0.2, 0.1}, wantOther: 0.2,
		},
		{
			name: "jitter: groups above busy", sys1: SystemCPU{Busy: 1500, Total: 6000},
			used: []uint64{400, 200}, wantGroups: []float64{0.4, 0.2}, wantOther: 0,
		},
		{
			name: "no time passed", sys1: sys0,
			used: []uint64{5}, wantGroups: []float64{0}, wantOther: 0,
		},
		{
			name: "no groups", sys1: SystemCPU{Busy: 1500, Total: 6000},
			used: nil, wantGroups: []float64{}, wantOther: 0.5,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ComputeShares(sys0, tt.sys1, tt.used)
			if len(got.Groups) != len(tt.wantGroups) {
				t.Fatalf("groups = %v, want %v", got.Groups, tt.wantGroups)
			}
			for i := range got.Groups {
				if math.Abs(got.Groups[i]-tt.wantGroups[i]) > 1e-9 {
					t.Errorf("group %d = %v, want %v", i, got.Groups[i], tt.wantGroups[i])
				}
			}
			if math.Abs(got.Other-tt.wantOther) > 1e-9 {
				t.Errorf("other = %v, want %v", got.Other, tt.wantOther)
			}
		})
	}
	if b := (Shares{Groups: []float64{0.25, 0.5}, Other: 0.125}).Busy(); b != 0.875 {
		t.Errorf("Busy = %v, want 0.875", b)
	}
}

func TestSamplerSelf(t *testing.T) {
	if _, err := os.Stat("/proc/stat"); err != nil {
		t.Skip("no /proc")
	}
	s, err := StartShares([]Group{{Name: "self", PIDs: []int{os.Getpid()}}})
	if err != nil {
		t.Fatal(err)
	}
	sh, err := s.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if len(sh.Groups) != 1 || sh.Groups[0] < 0 || sh.Groups[0] > 1 || sh.Other < 0 || sh.Other > 1 {
		t.Errorf("shares out of range: %+v", sh)
	}
}
