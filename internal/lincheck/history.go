package lincheck

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// Never is the return time of a write whose outcome is unknown: it may take
// effect at any moment after its call.
const Never int64 = math.MaxInt64

// ArtifactsEnv names the environment variable of the directory where
// [Verify] saves the history and visualization of a failed check (CI keeps
// it). When unset, Verify uses the test's TempDir, which is removed after
// the test.
const ArtifactsEnv = "KVSTORE_TEST_ARTIFACTS"

// Operation is one recorded operation.
type Operation struct {
	Client int    `json:"client"`
	Input  Input  `json:"input"`
	Output Output `json:"output"`
	// Call and Return are nanoseconds since the start of the recording, on
	// the monotonic clock. Return is [Never] for a write whose outcome is
	// unknown; Returned then says when its request ended.
	Call     int64 `json:"call"`
	Return   int64 `json:"return"`
	Returned int64 `json:"returned,omitempty"`
	// Endpoint is the base URL that served the operation.
	Endpoint string `json:"endpoint,omitempty"`
}

// History is a recorded history, in order of call.
type History []Operation

// Porcupine converts h to porcupine's operations, with the endpoint as
// metadata.
func (h History) Porcupine() []porcupine.Operation {
	ops := make([]porcupine.Operation, len(h))
	for i, op := range h {
		in := op.Input
		in.Call, in.Return = op.Call, op.Return // the model decides expiry by them
		ops[i] = porcupine.Operation{
			ClientId: op.Client,
			Input:    in,
			Call:     op.Call,
			Output:   op.Output,
			Return:   op.Return,
			Metadata: op.Endpoint,
		}
	}
	return ops
}

// Stats counts a history's operations by kind and by result.
type Stats struct {
	Ops      int
	ByKind   map[Kind]int
	ByResult map[Result]int
}

// Stats counts h's operations.
func (h History) Stats() Stats {
	s := Stats{Ops: len(h), ByKind: map[Kind]int{}, ByResult: map[Result]int{}}
	for _, op := range h {
		s.ByKind[op.Input.Kind]++
		s.ByResult[op.Output.Result]++
	}
	return s
}

func (s Stats) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d ops:", s.Ops)
	for _, k := range []Kind{Get, Put, Create, CAS, Delete} {
		fmt.Fprintf(&b, " %s=%d", k, s.ByKind[k])
	}
	b.WriteString(";")
	for _, r := range []Result{OK, NotFound, PreconditionFailed, Unknown, Failed} {
		fmt.Fprintf(&b, " %s=%d", r, s.ByResult[r])
	}
	return b.String()
}

// Check checks h against the model, giving up after timeout (0: no limit)
// with porcupine.Unknown. A first pass only decides, and stops at the
// first key found not linearizable. Unless that pass answers Ok, a second
// pass, bounded by timeout too, computes the partial linearizations that
// porcupine's visualization shows (info is empty when the result is Ok).
//
// Deciding that a history is not linearizable means exhausting its
// possible orders, and each write of unknown outcome multiplies them: a
// violation amid hundreds of such writes on one key may end in Unknown.
func Check(h History, timeout time.Duration) (porcupine.CheckResult, porcupine.LinearizationInfo) {
	model, ops := Model(), tighten(h).Porcupine()
	res := porcupine.CheckOperationsTimeout(model, ops, timeout)
	if res == porcupine.Ok {
		return res, porcupine.LinearizationInfo{}
	}
	again, info := porcupine.CheckOperationsVerbose(model, ops, timeout)
	if res == porcupine.Unknown {
		res = again
	}
	return res, info
}

// tighten returns h where each write of unknown outcome whose value a read
// returned gets that read's return time (the earliest such read) instead of
// [Never]: if a read saw the write, the write took effect before the read
// ended. Every linearization of h remains one of the result, so the check
// is as sound, and the checker need not consider the write pending past
// that point, which otherwise multiplies the states it explores.
func tighten(h History) History {
	type kv struct{ key, value string }
	writers := map[kv]int{}  // how many writes of this value
	seenBy := map[kv]int64{} // earliest return of a read of it
	for _, op := range h {
		in := op.Input
		switch {
		case in.Kind == Put || in.Kind == Create || in.Kind == CAS:
			writers[kv{in.Key, in.Value}]++
		case in.Kind == Get && op.Output.Result == OK:
			k := kv{in.Key, op.Output.Value}
			if t, ok := seenBy[k]; !ok || op.Return < t {
				seenBy[k] = op.Return
			}
		}
	}
	out := make(History, len(h))
	copy(out, h)
	for i, op := range out {
		k := kv{op.Input.Key, op.Input.Value}
		if op.Return != Never || op.Input.Kind == Get || op.Input.Kind == Delete || writers[k] != 1 {
			continue
		}
		if t, ok := seenBy[k]; ok && t >= op.Call {
			out[i].Return = t
		}
	}
	return out
}

// CheckAndSave checks h and, unless it is linearizable (porcupine.Ok),
// saves the history and its visualization in a new directory under dir
// named after name, and returns that directory's path ("" when Ok).
func CheckAndSave(h History, timeout time.Duration, dir, name string) (porcupine.CheckResult, string, error) {
	res, info := Check(h, timeout)
	if res == porcupine.Ok {
		return res, "", nil
	}
	path, err := WriteArtifacts(dir, name, h, info)
	return res, path, err
}

// WriteArtifacts writes history.json (h, readable by [LoadHistory]) and
// visualization.html (porcupine's interactive view of the partial
// linearizations in info) into a new directory under dir, and returns the
// new directory's path.
func WriteArtifacts(dir, name string, h History, info porcupine.LinearizationInfo) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	out, err := os.MkdirTemp(dir, sanitize(name)+"-*")
	if err != nil {
		return "", err
	}
	data, err := json.MarshalIndent(h, "", " ")
	if err != nil {
		return out, err
	}
	if err := os.WriteFile(filepath.Join(out, "history.json"), data, 0o644); err != nil {
		return out, err
	}
	if err := porcupine.VisualizePath(Model(), info, filepath.Join(out, "visualization.html")); err != nil {
		return out, fmt.Errorf("visualization: %w", err)
	}
	return out, nil
}

// LoadHistory reads a history.json written by [WriteArtifacts], to check
// it again or inspect it.
func LoadHistory(path string) (History, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var h History
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return h, nil
}

// TB is the part of testing.TB that [Verify] uses.
type TB interface {
	Helper()
	Name() string
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	TempDir() string
}

// Verify checks h and fails the test unless it is linearizable: on a
// violation, or when the check does not finish within timeout, it saves
// the history and visualization under $KVSTORE_TEST_ARTIFACTS (or the
// test's TempDir) and names the directory in the failure.
func Verify(t TB, h History, timeout time.Duration) porcupine.CheckResult {
	t.Helper()
	dir := os.Getenv(ArtifactsEnv)
	if dir == "" {
		dir = t.TempDir()
	}
	start := time.Now()
	res, path, err := CheckAndSave(h, timeout, dir, t.Name())
	t.Logf("lincheck: %s: %s in %s", h.Stats(), res, time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Errorf("lincheck: saving the history: %v", err)
	}
	switch res {
	case porcupine.Illegal:
		t.Errorf("lincheck: the history is NOT linearizable; history and visualization saved in %s", path)
	case porcupine.Unknown:
		t.Errorf("lincheck: the check did not finish within %s; history and visualization saved in %s", timeout, path)
	}
	return res
}

// sanitize makes a test name usable as a directory name.
func sanitize(name string) string {
	b := []byte(name)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "lincheck"
	}
	return string(b)
}

// sortByCall orders h by call time, then client, as porcupine's
// visualization lists them.
func sortByCall(h History) {
	slices.SortStableFunc(h, func(a, b Operation) int {
		if a.Call != b.Call {
			return cmp.Compare(a.Call, b.Call)
		}
		return cmp.Compare(a.Client, b.Client)
	})
}
