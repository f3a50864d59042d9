package procstat

import (
	"errors"
	"io/fs"
)

// Group is a named set of processes whose CPU time is counted together.
type Group struct {
	Name string
	PIDs []int
}

// Shares is where the machine's CPU capacity went between two samples:
// the share (0..1) of every group in order, and of everything else busy.
type Shares struct {
	Groups []float64
	// Other is busy time not spent in any group: other processes, and
	// kernel work not charged to a process (e.g. interrupts).
	Other float64
}

// Busy returns the share of the machine that was busy: the groups plus
// Other.
func (s Shares) Busy() float64 {
	sum := s.Other
	for _, g := range s.Groups {
		sum += g
	}
	return sum
}

// Sampler measures the CPU shares of process groups, between a call to
// StartShares and Stop. A pid should be in at most one group.
type Sampler struct {
	groups []Group
	sys    SystemCPU
	start  []map[int]uint64 // per group: pid to CPU ticks at the start
}

// StartShares starts measuring groups. A pid that has already exited (a
// short-lived child such as a container health check) is left out.
func StartShares(groups []Group) (*Sampler, error) {
	s := &Sampler{groups: groups, start: make([]map[int]uint64, len(groups))}
	for i, g := range groups {
		s.start[i] = make(map[int]uint64, len(g.PIDs))
		for _, pid := range g.PIDs {
			n, err := ProcessCPU(pid)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, err
			}
			s.start[i][pid] = n
		}
	}
	sys, err := ReadSystemCPU()
	if err != nil {
		return nil, err
	}
	s.sys = sys
	return s, nil
}

// Stop returns the shares since StartShares. A process that exited in
// between counts with the CPU time it had at the start.
func (s *Sampler) Stop() (Shares, error) {
	sys, err := ReadSystemCPU()
	if err != nil {
		return Shares{}, err
	}
	used := make([]uint64, len(s.groups))
	for i, g := range s.groups {
		for _, pid := range g.PIDs {
			n, err := ProcessCPU(pid)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return Shares{}, err
			}
			start, ok := s.start[i][pid]
			if !ok {
				continue // exited before the start, or started after it
			}
			if n > start {
				used[i] += n - start
			}
		}
	}
	return ComputeShares(s.sys, sys, used), nil
}

// ComputeShares turns the CPU ticks each group used between two
// /proc/stat samples into shares of the machine's capacity. Shares are
// clamped to [0, 1]; sampling jitter can otherwise make Other negative.
func ComputeShares(sys0, sys1 SystemCPU, used []uint64) Shares {
	out := Shares{Groups: make([]float64, len(used))}
	total := float64(sys1.Total) - float64(sys0.Total)
	if total <= 0 {
		return out
	}
	other := float64(sys1.Busy) - float64(sys0.Busy)
	for i, u := range used {
		out.Groups[i] = min(float64(u)/total, 1)
		other -= float64(u)
	}
	out.Other = min(max(other/total, 0), 1)
	return out
}
