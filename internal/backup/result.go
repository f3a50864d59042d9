package backup

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxResultBytes is the most Result.Encode writes: the size of a
// Kubernetes container's termination message (4096 bytes), where the
// operator's backup Job leaves its result.
const MaxResultBytes = 4096

// maxResultMessage bounds each message of a Result, so that an error with
// a long cause still leaves room for the rest.
const maxResultMessage = 1024

// Result is the outcome of one `kvstore backup` run, as --result-file
// holds it (JSON): the backup's manifest (name, sha256, size, revision)
// when it succeeded, else its error. The operator's Job for a
// persistentVolumeClaim destination writes it to its termination message
// and the operator reads it back with ParseResult.
type Result struct {
	// Name, SHA256, SizeBytes and Revision are the manifest's, when the
	// backup succeeded (Name is empty otherwise).
	Name      string `json:"name,omitempty"`
	SHA256    string `json:"sha256,omitempty"`
	SizeBytes int64  `json:"size_bytes,omitempty"`
	Revision  uint64 `json:"revision,omitempty"`
	// Pruned are the names of the backups the retention deleted after
	// this one; PrunedOmitted counts those left out so that the result
	// fits in MaxResultBytes.
	Pruned        []string `json:"pruned,omitempty"`
	PrunedOmitted int      `json:"pruned_omitted,omitempty"`
	// PruneError says why the retention failed, after the backup
	// succeeded.
	PruneError string `json:"prune_error,omitempty"`
	// Error says why the backup failed.
	Error string `json:"error,omitempty"`
}

// ResultOf is the result of a run that wrote m (zero when it failed) and
// then pruned the backups pruned, err its error: the backup's when m is
// zero, else the retention's.
func ResultOf(m Manifest, pruned []Manifest, err error) Result {
	if m.Name == "" {
		msg := "backup failed"
		if err != nil {
			msg = err.Error()
		}
		return Result{Error: msg}
	}
	r := Result{Name: m.Name, SHA256: m.SHA256, SizeBytes: m.SizeBytes, Revision: m.Revision}
	for _, p := range pruned {
		r.Pruned = append(r.Pruned, p.Name)
	}
	if err != nil {
		r.PruneError = err.Error()
	}
	return r
}

// Encode is r as JSON within MaxResultBytes: messages are cut to 1 KiB,
// then pruned names dropped from the end (counted in PrunedOmitted) until
// it fits.
func (r Result) Encode() []byte {
	r.Error, r.PruneError = cut(r.Error, maxResultMessage), cut(r.PruneError, maxResultMessage)
	r.Pruned = append([]string(nil), r.Pruned...)
	for {
		b, _ := json.Marshal(r) // strings, numbers and a slice of strings
		if len(b) <= MaxResultBytes || len(r.Pruned) == 0 {
			return b
		}
		r.Pruned = r.Pruned[:len(r.Pruned)-1]
		r.PrunedOmitted++
	}
}

// cut shortens s to at most n bytes, on a rune boundary, marking the cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = " [cut]"
	s = s[:n-len(mark)]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + mark
}

// ParseResult reads what Encode wrote. Anything else (empty, cut short,
// another program's output, a result without a valid manifest or error)
// is an error wrapping ErrInvalid.
func ParseResult(b []byte) (Result, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return Result{}, fmt.Errorf("%w result: empty", ErrInvalid)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var r Result
	if err := dec.Decode(&r); err != nil {
		return Result{}, fmt.Errorf("%w result: not a backup result: %v", ErrInvalid, err)
	}
	if dec.More() {
		return Result{}, fmt.Errorf("%w result: not a backup result: data after the JSON object", ErrInvalid)
	}
	if err := r.check(); err != nil {
		return Result{}, fmt.Errorf("%w result: %v", ErrInvalid, err)
	}
	return r, nil
}

func (r Result) check() error {
	if r.Name == "" {
		if r.Error == "" {
			return errors.New("neither a backup name nor an error")
		}
		return nil
	}
	sum, err := hex.DecodeString(r.SHA256)
	switch {
	case r.Error != "":
		return errors.New("both a backup name and an error")
	case !strings.HasPrefix(r.Name, namePrefix) || strings.ContainsAny(r.Name, `/\`):
		return fmt.Errorf("name %q is not a backup's name", r.Name)
	case err != nil || len(sum) != 32:
		return fmt.Errorf("sha256 %q is not a hex SHA-256", r.SHA256)
	case r.SizeBytes <= 0:
		return fmt.Errorf("size_bytes %d is not positive", r.SizeBytes)
	}
	for _, p := range r.Pruned {
		if !strings.HasPrefix(p, namePrefix) || strings.ContainsAny(p, `/\`) {
			return fmt.Errorf("pruned %q is not a backup's name", p)
		}
	}
	return nil
}

// Object is the key of the result's data object, Name + ".db".
func (r Result) Object() string { return r.Name + dataExt }
