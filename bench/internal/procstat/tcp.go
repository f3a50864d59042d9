package procstat

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// TCPStats are TCP counters of one network namespace, from the "Tcp:"
// lines of /proc/PID/net/snmp.
type TCPStats struct {
	// ActiveOpens counts connections the namespace opened (connect).
	ActiveOpens uint64
	// PassiveOpens counts connections the namespace accepted.
	PassiveOpens uint64
	// CurrEstab is the number of connections currently established.
	CurrEstab uint64
}

// ReadTCPStats returns the TCP counters of the network namespace that
// process pid is in. For a process in a container this is the
// container's namespace, so reading it needs the right to inspect pid
// (root, or the same user).
func ReadTCPStats(pid int) (TCPStats, error) {
	path := fmt.Sprintf("/proc/%d/net/snmp", pid)
	b, err := os.ReadFile(path)
	if err != nil {
		return TCPStats{}, fmt.Errorf("read %s: %w", path, err)
	}
	s, err := ParseTCPStats(string(b))
	if err != nil {
		return TCPStats{}, fmt.Errorf("parse %s: %w", path, err)
	}
	return s, nil
}

// ParseTCPStats extracts the TCP counters from the text of
// /proc/PID/net/snmp: a "Tcp:" line of names followed by a "Tcp:" line
// of values.
func ParseTCPStats(snmp string) (TCPStats, error) {
	var names, values []string
	for line := range strings.Lines(snmp) {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Tcp:" {
			continue
		}
		if names == nil {
			names = f[1:]
		} else {
			values = f[1:]
			break
		}
	}
	if names == nil || values == nil {
		return TCPStats{}, errors.New("no Tcp: name and value lines")
	}
	if len(names) != len(values) {
		return TCPStats{}, fmt.Errorf("Tcp: %d names but %d values", len(names), len(values))
	}
	var s TCPStats
	want := map[string]*uint64{"ActiveOpens": &s.ActiveOpens, "PassiveOpens": &s.PassiveOpens, "CurrEstab": &s.CurrEstab}
	for i, name := range names {
		dst, ok := want[name]
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(values[i], 10, 64)
		if err != nil {
			return TCPStats{}, fmt.Errorf("Tcp: %s: %w", name, err)
		}
		*dst = n
		delete(want, name)
	}
	if len(want) > 0 {
		return TCPStats{}, fmt.Errorf("Tcp: %d of ActiveOpens, PassiveOpens and CurrEstab missing", len(want))
	}
	return s, nil
}
