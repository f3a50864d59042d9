// Package procstat reads memory, CPU and TCP figures of processes, and the
// machine's CPU model and load average, from /proc.
package procstat

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Memory holds the memory figures of a process, in bytes.
type Memory struct {
	// PeakRSS is VmHWM, the high-water mark of the resident set size.
	PeakRSS uint64
	// RSS is VmRSS, the current resident set size.
	RSS uint64
	// Anon and File split RSS: RssAnon (heap, stacks) and RssFile (pages of
	// mapped files, such as a bbolt file's mmap, which the kernel can drop
	// and re-read under memory pressure). Zero when the kernel lacks them.
	Anon, File uint64
}

// Read returns the memory figures of process pid from /proc/PID/status.
func Read(pid int) (Memory, error) {
	path := fmt.Sprintf("/proc/%d/status", pid)
	b, err := os.ReadFile(path)
	if err != nil {
		return Memory{}, fmt.Errorf("read %s: %w", path, err)
	}
	m, err := Parse(string(b))
	if err != nil {
		return Memory{}, fmt.Errorf("parse %s: %w", path, err)
	}
	return m, nil
}

// Parse extracts VmHWM, VmRSS, RssAnon and RssFile from the text of a /proc/PID/status file.
func Parse(status string) (Memory, error) {
	var m Memory
	var haveHWM, haveRSS bool
	sc := bufio.NewScanner(strings.NewReader(status))
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "VmHWM" && name != "VmRSS" && name != "RssAnon" && name != "RssFile") {
			continue
		}
		n, err := parseKB(value)
		if err != nil {
			return Memory{}, fmt.Errorf("%s: %w", name, err)
		}
		switch name {
		case "VmHWM":
			m.PeakRSS, haveHWM = n, true
		case "VmRSS":
			m.RSS, haveRSS = n, true
		case "RssAnon":
			m.Anon = n
		case "RssFile":
			m.File = n
		}
	}
	if err := sc.Err(); err != nil {
		return Memory{}, fmt.Errorf("scan status: %w", err)
	}
	if !haveHWM || !haveRSS {
		return Memory{}, fmt.Errorf("VmHWM or VmRSS missing (kernel thread or zombie?)")
	}
	return m, nil
}

// parseKB parses a value such as "  123456 kB" into bytes.
func parseKB(v string) (uint64, error) {
	fields := strings.Fields(v)
	if len(fields) != 2 || fields[1] != "kB" {
		return 0, fmt.Errorf("unexpected value %q", v)
	}
	n, err := strconv.ParseUint(fields[0], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("unexpected value %q: %w", v, err)
	}
	return n * 1024, nil
}
