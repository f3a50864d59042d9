package backup_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"kvstore.dev/kvstore/internal/backup"
)

const testSum = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

func TestResultRoundTrip(t *testing.T) {
	many := make([]backup.Manifest, 300) // more names than fit in 4096 bytes
	for i := range many {
		many[i].Name = fmt.Sprintf("kvstore-20261202T%06d.000Z", i)
	}
	m := backup.Manifest{Name: "kvstore-20261203T120000.000Z", SHA256: testSum, SizeBytes: 42, Revision: 7}
	cases := map[string]struct {
		in   backup.Result
		want backup.Result
	}{
		"success": {
			in:   backup.ResultOf(m, many[:2], nil),
			want: backup.Result{Name: m.Name, SHA256: testSum, SizeBytes: 42, Revision: 7, Pruned: []string{many[0].Name, many[1].Name}},
		},
		"prune failed": {
			in:   backup.ResultOf(m, nil, errors.New("prune backup x: permission denied")),
			want: backup.Result{Name: m.Name, SHA256: testSum, SizeBytes: 42, Revision: 7, PruneError: "prune backup x: permission denied"},
		},
		"failure": {
			in:   backup.ResultOf(backup.Manifest{}, nil, errors.New("snapshot: connection refused")),
			want: backup.Result{Error: "snapshot: connection refused"},
		},
		"a long error is cut": {
			in:   backup.ResultOf(backup.Manifest{}, nil, errors.New(strings.Repeat("é", 3000))),
			want: backup.Result{Error: strings.Repeat("é", 509) + " [cut]"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			b := tc.in.Encode()
			if len(b) > backup.MaxResultBytes {
				t.Fatalf("%d bytes", len(b))
			}
			got, err := backup.ParseResult(b)
			if err != nil {
				t.Fatalf("ParseResult(%s): %v", b, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("(-want +got)\n- %+v\n+ %+v", tc.want, got)
			}
		})
	}

	t.Run("too many pruned names are counted", func(t *testing.T) {
		b := backup.ResultOf(m, many, errors.New(strings.Repeat("x", 5000))).Encode()
		if len(b) > backup.MaxResultBytes {
			t.Fatalf("%d bytes", len(b))
		}
		got, err := backup.ParseResult(b)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Pruned) == 0 || len(got.Pruned)+got.PrunedOmitted != len(many) || got.Pruned[0] != many[0].Name {
			t.Errorf("%d names kept, %d omitted, of %d", len(got.Pruned), got.PrunedOmitted, len(many))
		}
	})
}

func TestParseResultRefuses(t *testing.T) {
	ok := string(backup.ResultOf(backup.Manifest{Name: "kvstore-20261203T120000.000Z", SHA256: testSum, SizeBytes: 42}, nil, nil).Encode())
	cases := map[string]string{
		"empty":          "",
		"cut short":      ok[:len(ok)/2],
		"log lines":      `{"time":"2026-12-03T12:00:00Z","level":"ERROR","msg":"backup failed"}` + "\n" + `{"msg":"x"}`,
		"a log line":     `{"time":"2026-12-03T12:00:00Z","level":"ERROR","msg":"backup failed"}`,
		"plain text":     "panic: runtime error: invalid memory address",
		"nothing in it":  `{}`,
		"bad sha256":     `{"name":"kvstore-20261203T120000.000Z","sha256":"xyz","size_bytes":1}`,
		"zero size":      `{"name":"kvstore-20261203T120000.000Z","sha256":"` + testSum + `"}`,
		"not a name":     `{"name":"../etc","sha256":"` + testSum + `","size_bytes":1}`,
		"name and error": `{"name":"kvstore-20261203T120000.000Z","sha256":"` + testSum + `","size_bytes":1,"error":"e"}`,
		"bad pruned":     `{"name":"kvstore-20261203T120000.000Z","sha256":"` + testSum + `","size_bytes":1,"pruned":["a/b"]}`,
		"trailing data":  ok + ok,
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			if r, err := backup.ParseResult([]byte(in)); !errors.Is(err, backup.ErrInvalid) {
				t.Errorf("ParseResult(%q) = %+v, %v; want ErrInvalid", in, r, err)
			}
		})
	}
	if _, err := backup.ParseResult([]byte(ok + "\n")); err != nil {
		t.Errorf("a valid result with a newline: %v", err)
	}
}
