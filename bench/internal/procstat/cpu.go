package procstat

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// SystemCPU is the machine-wide CPU time from the first line of
// /proc/stat, in clock ticks summed over all CPUs.
type SystemCPU struct {
	Busy  uint64 // user, nice, system, irq, softirq, steal
	Total uint64 // Busy plus idle and iowait
}

// ReadSystemCPU reads machine-wide CPU time from /proc/stat.
func ReadSystemCPU() (SystemCPU, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return SystemCPU{}, fmt.Errorf("read /proc/stat: %w", err)
	}
	return ParseSystemCPU(string(b))
}

// ParseSystemCPU parses the aggregate "cpu" line of /proc/stat text.
func ParseSystemCPU(stat string) (SystemCPU, error) {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return SystemCPU{}, fmt.Errorf("unexpected /proc/stat line %q", line)
	}
	var v [8]uint64 // user nice system idle iowait irq softirq steal
	for i := range v {
		n, err := strconv.ParseUint(f[i+1], 10, 64)
		if err != nil {
			return SystemCPU{}, fmt.Errorf("/proc/stat field %d: %w", i+1, err)
		}
		v[i] = n
	}
	busy := v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
	return SystemCPU{Busy: busy, Total: busy + v[3] + v[4]}, nil
}

// ProcessCPU returns the user plus system CPU time of process pid (all
// its threads), in clock ticks, from /proc/PID/stat.
func ProcessCPU(pid int) (uint64, error) {
	path := fmt.Sprintf("/proc/%d/stat", pid)
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	n, err := ParseProcessCPU(string(b))
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", path, err)
	}
	return n, nil
}

// ParseProcessCPU extracts utime+stime from /proc/PID/stat text.
func ParseProcessCPU(stat string) (uint64, error) {
	f, err := statFields(stat, 13) // utime and stime are fields 14 and 15
	if err != nil {
		return 0, err
	}
	var sum uint64
	for _, s := range f[11:13] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("utime/stime: %w", err)
		}
		sum += n
	}
	return sum, nil
}

// statFields returns the fields of /proc/PID/stat text after the command
// name (field 2, which may contain spaces and parentheses, so the fields
// are counted from the last ')'): f[0] is field 3 (state). It fails when
// there are fewer than n.
func statFields(stat string, n int) (f []string, err error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return nil, fmt.Errorf("no command name in %q", stat)
	}
	if f = strings.Fields(stat[i+1:]); len(f) < n {
		return nil, fmt.Errorf("too few fields in %q", stat)
	}
	return f, nil
}

// Background measures how busy the machine is with processes other than
// a given set, between a call to StartBackground and Stop.
type Background struct {
	pids  []int
	sys   SystemCPU
	procs uint64
}

// StartBackground starts measuring CPU use by everything except pids.
func StartBackground(pids ...int) (*Background, error) {
	sys, err := ReadSystemCPU()
	if err != nil {
		return nil, err
	}
	procs, err := sumProcessCPU(pids)
	if err != nil {
		return nil, err
	}
	return &Background{pids: pids, sys: sys, procs: procs}, nil
}

// Stop returns the fraction (0..1) of the machine's total CPU capacity
// used by other processes since StartBackground.
func (b *Background) Stop() (float64, error) {
	sys, err := ReadSystemCPU()
	if err != nil {
		return 0, err
	}
	procs, err := sumProcessCPU(b.pids)
	if err != nil {
		return 0, err
	}
	return BackgroundShare(b.sys, sys, b.procs, procs), nil
}

// BackgroundShare computes the share of total CPU capacity between two
// /proc/stat samples that was not used by the measured processes, whose
// CPU time went from procs0 to procs1.
func BackgroundShare(sys0, sys1 SystemCPU, procs0, procs1 uint64) float64 {
	total := float64(sys1.Total) - float64(sys0.Total)
	if total <= 0 {
		return 0
	}
	other := (float64(sys1.Busy) - float64(sys0.Busy)) - (float64(procs1) - float64(procs0))
	return min(max(other/total, 0), 1)
}

// sumProcessCPU adds up the CPU ticks of pids; one that has exited counts
// as zero.
func sumProcessCPU(pids []int) (uint64, error) {
	var sum uint64
	for _, pid := range pids {
		n, err := ProcessCPU(pid)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, err
		}
		sum += n
	}
	return sum, nil
}
