package backup_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kvstore.dev/kvstore/internal/backup"
)

func TestParseURI(t *testing.T) {
	ok := map[string]backup.Location{
		"s3://backups":               {Scheme: "s3", Bucket: "backups"},
		"s3://backups/":              {Scheme: "s3", Bucket: "backups"},
		"s3://my.backups-1/team/kv/": {Scheme: "s3", Bucket: "my.backups-1", Prefix: "team/kv"},
		"file:///var/backups/kv":     {Scheme: "file", Path: "/var/backups/kv"},
		"file://localhost/srv/b/":    {Scheme: "file", Path: "/srv/b"},
	}
	for in, want := range ok {
		t.Run(in, func(t *testing.T) {
			got, err := backup.ParseURI(in)
			if err != nil || got != want {
				t.Fatalf("ParseURI(%q) = %+v, %v; want %+v", in, got, err, want)
			}
			if again, err := backup.ParseURI(got.String()); err != nil || again != got {
				t.Errorf("ParseURI(%q) (its String) = %+v, %v", got.String(), again, err)
			}
		})
	}
	bad := map[string]string{ // URI -> the field the error names
		"":                        "uri:",
		"/var/backups":            "scheme:",
		"https://bucket/x":        "scheme:",
		"s3://Backups/x":          "bucket:",
		"s3://ab":                 "bucket:",
		"s3://a..b/x":             "bucket:",
		"s3://bucket:9000/x":      "bucket:",
		"s3://key:secret@bucket/": "userinfo:",
		"s3://bucket/x?region=eu": "query:",
		"s3://bucket/a//b":        "prefix:",
		"s3://bucket/a/../b":      "prefix:",
		"file://backups/kv":       "host:",
		"file:///":                "path:",
	}
	for in, field := range bad {
		t.Run("bad "+in, func(t *testing.T) {
			_, err := backup.ParseURI(in)
			if !errors.Is(err, backup.ErrInvalid) || !strings.Contains(err.Error(), field) {
				t.Fatalf("ParseURI(%q) = %v; want ErrInvalid naming %q", in, err, field)
			}
		})
	}
}

func TestParseAge(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"": 0, "0": 0, "90s": 90 * time.Second, "15m": 15 * time.Minute, "12h": 12 * time.Hour,
		"30d": 30 * 24 * time.Hour, "2w": 14 * 24 * time.Hour,
	} {
		if got, err := backup.ParseAge(in); err != nil || got != want {
			t.Errorf("ParseAge(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"30", "d", "-1d", "1.5d", "1y", "0d", "1d12h"} {
		if _, err := backup.ParseAge(in); !errors.Is(err, backup.ErrInvalid) {
			t.Errorf("ParseAge(%q) = %v; want ErrInvalid", in, err)
		}
	}
	if got := backup.FormatAge(14 * 24 * time.Hour); got != "2w" {
		t.Errorf("FormatAge(14d) = %q", got)
	}
}

// manifests returns n manifests, newest first, started one day apart
// ending at now.
func manifests(n int, now time.Time) []backup.Manifest {
	var ms []backup.Manifest
	for i := range n {
		start := now.Add(-time.Duration(i) * 24 * time.Hour)
		ms = append(ms, backup.Manifest{Name: "kvstore-" + start.Format("20060102T150405.000Z"), StartedAt: start})
	}
	return ms
}

func TestRetentionExpired(t *testing.T) {
	now := time.Date(2026, 12, 2, 17, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	tests := map[string]struct {
		r    backup.Retention
		n    int
		want []int // indexes into manifests(n), newest first
	}{
		"no limits":                         {backup.Retention{}, 5, nil},
		"keep last 3":                       {backup.Retention{KeepLast: 3}, 5, []int{3, 4}},
		"keep last 1":                       {backup.Retention{KeepLast: 1}, 3, []int{1, 2}},
		"keep more than there are":          {backup.Retention{KeepLast: 10}, 3, nil},
		"max age 2d":                        {backup.Retention{MaxAge: 2*day + time.Hour}, 5, []int{3, 4}},
		"both: the stricter wins":           {backup.Retention{KeepLast: 2, MaxAge: 10 * day}, 5, []int{2, 3, 4}},
		"the only backup, too old, is kept": {backup.Retention{MaxAge: time.Minute}, 1, nil},
		"age never takes the newest":        {backup.Retention{MaxAge: time.Second}, 3, []int{1, 2}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ms := manifests(tc.n, now)
			if name == "the only backup, too old, is kept" {
				ms[0].StartedAt = now.Add(-time.Hour)
			}
			got := tc.r.Expired(ms, now)
			var want []backup.Manifest
			for _, i := range tc.want {
				want = append(want, ms[i])
			}
			if len(got) != len(want) {
				t.Fatalf("Expired = %v, want %v", names(got), names(want))
			}
			for i := range got {
				if got[i].Name != want[i].Name {
					t.Fatalf("Expired = %v, want %v", names(got), names(want))
				}
			}
		})
	}
}

func names(ms []backup.Manifest) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return out
}

// clock is a fake clock that moves a minute at each reading.
type clock struct{ t time.Time }

func (c *clock) now() time.Time {
	c.t = c.t.Add(time.Minute)
	return c.t
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// exercise writes three backups to d, then checks List, Open, Fetch and
// Prune; the S3 tests run it against a real S3 server.
func exercise(t *testing.T, d backup.Destination, size int) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	var datas [][]byte
	var written []backup.Manifest
	for i := range 3 {
		data := randomBytes(t, size+i)
		m, err := backup.Write(ctx, d, bytes.NewReader(data), backup.Info{Revision: uint64(10 + i), ServerVersion: "v-test", Source: "http://kv", Now: clk.now})
		if err != nil {
			t.Fatalf("Write %d: %v", i, err)
		}
		if m.SHA256 != sum(data) || m.SizeBytes != int64(len(data)) || m.Revision != uint64(10+i) || m.ServerVersion != "v-test" {
			t.Fatalf("Write %d = %+v; want sha256 %s, size %d", i, m, sum(data), len(data))
		}
		datas, written = append(datas, data), append(written, m)
	}
	ms, err := backup.List(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 3 || ms[0] != written[2] || ms[2] != written[0] {
		t.Fatalf("List = %v, want the 3 written, newest first", names(ms))
	}
	rc, m, err := backup.Open(ctx, d, written[1].Name)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, datas[1]) || m != written[1] {
		t.Fatalf("Open %s: read %d bytes, %v; want %d bytes", written[1].Name, len(got), err, len(datas[1]))
	}
	path := filepath.Join(t.TempDir(), "fetched")
	if _, err := backup.Fetch(ctx, d, written[2].Name, path, written[2].SHA256); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); !bytes.Equal(b, datas[2]) {
		t.Fatal("Fetch wrote other bytes")
	}
	deleted, err := backup.Prune(ctx, d, backup.Retention{KeepLast: 2}, clk.now())
	if err != nil || len(deleted) != 1 || deleted[0] != written[0] {
		t.Fatalf("Prune(keep 2) = %v, %v; want %s", names(deleted), err, written[0].Name)
	}
	keys, err := d.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if strings.HasPrefix(k, written[0].Name) {
			t.Errorf("%s is still in the destination after Prune", k)
		}
	}
	if len(keys) != 4 {
		t.Errorf("destination holds %v, want the data and manifest of 2 backups", keys)
	}
	if latest, err := backup.Latest(ctx, d); err != nil || latest != written[2] {
		t.Errorf("Latest = %s, %v; want %s", latest.Name, err, written[2].Name)
	}
}

func TestDir(t *testing.T) {
	exercise(t, backup.NewDir(filepath.Join(t.TempDir(), "backups")), 100<<10)
}

// corruptions damage the data object of a backup in a directory.
var corruptions = map[string]func(t *testing.T, path string){
	"a flipped byte": func(t *testing.T, path string) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0x40
		os.WriteFile(path, b, 0o600)
	},
	"truncated": func(t *testing.T, path string) { os.Truncate(path, 1000) },
	"appended":  func(t *testing.T, path string) { appendFile(t, path, []byte("more")) },
}

func appendFile(t *testing.T, path string, b []byte) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(b)
	f.Close()
}

func TestCorruptBackupRefused(t *testing.T) {
	ctx := context.Background()
	for name, corrupt := range corruptions {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			d := backup.NewDir(root)
			m, err := backup.Write(ctx, d, bytes.NewReader(randomBytes(t, 64<<10)), backup.Info{})
			if err != nil {
				t.Fatal(err)
			}
			corrupt(t, filepath.Join(root, m.Object))
			path := filepath.Join(t.TempDir(), "fetched")
			_, err = backup.Fetch(ctx, d, m.Name, path, "")
			if !errors.Is(err, backup.ErrCorrupt) || !strings.Contains(err.Error(), m.Name) {
				t.Fatalf("Fetch of a corrupted backup = %v; want ErrCorrupt naming %s", err, m.Name)
			}
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("Fetch left %s behind: %v", path, err)
			}
		})
	}
	t.Run("pinned checksum", func(t *testing.T) {
		d := backup.NewDir(t.TempDir())
		m, err := backup.Write(ctx, d, bytes.NewReader(randomBytes(t, 1000)), backup.Info{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = backup.Fetch(ctx, d, m.Name, filepath.Join(t.TempDir(), "f"), sum([]byte("other")))
		if !errors.Is(err, backup.ErrCorrupt) {
			t.Fatalf("Fetch with another SHA-256 = %v; want ErrCorrupt", err)
		}
	})
	t.Run("bad manifest", func(t *testing.T) {
		root := t.TempDir()
		d := backup.NewDir(root)
		m, err := backup.Write(ctx, d, bytes.NewReader(randomBytes(t, 1000)), backup.Info{})
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(root, m.Name+".json"), []byte(`{"format":1,"name":"`+m.Name+`","sha256":"zz"}`), 0o600)
		if _, err := backup.List(ctx, d); !errors.Is(err, backup.ErrCorrupt) {
			t.Fatalf("List with a bad manifest = %v; want ErrCorrupt", err)
		}
	})
}

// failingReader fails after n bytes, as a snapshot stream the server cut.
type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, io.ErrUnexpectedEOF
	}
	n := min(len(p), f.n)
	f.n -= n
	return n, nil
}

func TestFailedStreamLeavesNothing(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	d := backup.NewDir(root)
	if _, err := backup.Write(ctx, d, &failingReader{n: 300 << 10}, backup.Info{}); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("Write of a cut stream = %v; want io.ErrUnexpectedEOF", err)
	}
	if _, err := backup.Write(ctx, d, bytes.NewReader(nil), backup.Info{}); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("Write of an empty stream = %v; want an error", err)
	}
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		t.Errorf("left behind: %s", e.Name())
	}
	if _, err := backup.Latest(ctx, d); !errors.Is(err, backup.ErrNoBackups) {
		t.Errorf("Latest = %v; want ErrNoBackups", err)
	}
}

// TestWriteMaxRate: with MaxBytesPerSecond, Write waits (on the clock of
// Info.Now and Info.Sleep) for as long as the rate says, after the first
// burst of a tenth of a second's worth; the backup is whole.
func TestWriteMaxRate(t *testing.T) {
	ctx := context.Background()
	d := backup.NewDir(t.TempDir())
	data := randomBytes(t, 1<<20)
	const rate = 256 << 10
	now := time.Unix(1e9, 0)
	var waits []time.Duration
	info := backup.Info{MaxBytesPerSecond: rate,
		Now: func() time.Time { return now },
		Sleep: func(_ context.Context, d time.Duration) error {
			waits = append(waits, d)
			now = now.Add(d)
			return nil
		}}
	m, err := backup.Write(ctx, d, bytes.NewReader(data), info)
	if err != nil {
		t.Fatal(err)
	}
	if m.SHA256 != sum(data) || m.SizeBytes != int64(len(data)) {
		t.Errorf("manifest %+v, want the data's size and SHA-256", m)
	}
	var total time.Duration
	for _, w := range waits {
		total += w
	}
	burst := rate / 10
	want := time.Duration(float64(len(data)-burst) / rate * float64(time.Second)) // 3.9 s
	if diff := total - want; diff < -time.Duration(len(waits)) || diff > 0 {
		t.Errorf("waited %v in %d waits, want %v (1 ns of rounding per wait)", total, len(waits), want)
	}
	if took := m.CompletedAt.Sub(m.StartedAt); took != total {
		t.Errorf("the manifest says the backup took %v, the waits %v", took, total)
	}
	if _, err := backup.Write(ctx, d, bytes.NewReader(data), backup.Info{MaxBytesPerSecond: -1}); !errors.Is(err, backup.ErrInvalid) {
		t.Errorf("a negative rate: %v, want ErrInvalid", err)
	}
}
