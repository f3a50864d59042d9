package procstat

import (
	"os"
	"os/exec"
	"slices"
	"testing"
)

func TestDescendants(t *testing.T) {
	// 1 ─┬─ 10 ─┬─ 11
	//    │      └─ 12 ── 13
	//    └─ 20
	parents := map[int]int{1: 0, 10: 1, 11: 10, 12: 10, 13: 12, 20: 1, 30: 30}
	tests := []struct {
		name string
		root int
		want []int
	}{
		{"subtree", 10, []int{10, 11, 12, 13}},
		{"leaf", 13, []int{13}},
		{"whole tree", 1, []int{1, 10, 11, 12, 13, 20}},
		{"self-parented", 30, []int{30}},
		{"unknown root", 99, []int{99}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Descendants(parents, tt.root); !slices.Equal(got, tt.want) {
				t.Errorf("Descendants(%d) = %v, want %v", tt.root, got, tt.want)
			}
		})
	}
}

func TestParseParent(t *testing.T) {
	tests := []struct {
		name    string
		stat    string
		want    int
		wantErr bool
	}{
		{name: "plain", stat: "1627 (nginx) S 1554 1554 1554 0 -1", want: 1554},
		{name: "name with parens", stat: "7 (a) b) (c) R 42 7 7", want: 42},
		{name: "no name", stat: "7 a R 42", wantErr: true},
		{name: "short", stat: "7 (a) R", wantErr: true},
		{name: "not a number", stat: "7 (a) R x", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseParent(tt.stat)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestTreeFindsChild(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start sleep: %v", err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	got, err := Tree(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != os.Getpid() || !slices.Contains(got, cmd.Process.Pid) {
		t.Errorf("Tree(self) = %v, want self first and child %d", got, cmd.Process.Pid)
	}
	if _, err := Tree(1 << 30); err == nil {
		t.Error("Tree of a missing pid: no error")
	}
}
