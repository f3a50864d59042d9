package procstat

import (
	"fmt"
	"os"
	"slices"
	"strconv"
)

// Tree returns pid followed by all its descendants (children,
// grandchildren, ...) that are alive now, from /proc. Processes that
// vanish while /proc is being read are skipped.
func Tree(pid int) ([]int, error) {
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
		return nil, fmt.Errorf("process %d: %w", pid, err)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("read /proc: %w", err)
	}
	parents := make(map[int]int, len(entries))
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		if pp, err := ParseParent(string(b)); err == nil {
			parents[p] = pp
		}
	}
	return Descendants(parents, pid), nil
}

// Descendants returns root followed by every process below it in
// parents (pid to parent pid), in ascending order.
func Descendants(parents map[int]int, root int) []int {
	children := map[int][]int{}
	for p, pp := range parents {
		if p != pp {
			children[pp] = append(children[pp], p)
		}
	}
	var below []int
	queue := []int{root}
	seen := map[int]bool{root: true}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			if !seen[c] {
				seen[c] = true
				below = append(below, c)
				queue = append(queue, c)
			}
		}
	}
	slices.Sort(below)
	return append([]int{root}, below...)
}

// ParseParent extracts the parent pid (field 4) from /proc/PID/stat text.
func ParseParent(stat string) (int, error) {
	f, err := statFields(stat, 2)
	if err != nil {
		return 0, err
	}
	pp, err := strconv.Atoi(f[1])
	if err != nil {
		return 0, fmt.Errorf("parent pid: %w", err)
	}
	return pp, nil
}
