package backup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

const (
	namePrefix  = "kvstore-"
	nameLayout  = "20060102T150405.000Z"
	dataExt     = ".db"
	manifestExt = ".json"
	// ManifestFormat is the Format of the manifests Write writes.
	ManifestFormat = 1
	maxManifest    = 64 << 10
)

// Manifest describes one complete backup; it is stored as <Name>.json
// beside the data object <Name>.db.
type Manifest struct {
	Format int `json:"format"`
	// Name is "kvstore-" and the UTC time the backup started,
	// 20261202T173000.123Z: names sort by time.
	Name string `json:"name"`
	// Object is the key of the data object, Name + ".db".
	Object string `json:"object"`
	// SHA256 (hex) and SizeBytes are those of the data object.
	SHA256    string `json:"sha256"`
	SizeBytes int64  `json:"size_bytes"`
	// Revision is the store's revision when the server began the
	// snapshot (the Content-Disposition of GET /api/v1/snapshot); the
	// snapshot holds at least that revision. 0 when unknown.
	Revision uint64 `json:"revision"`
	// StartedAt and CompletedAt bound the backup.
	StartedAt   time.Time `json:"started_at"`
	CompletedAt time.Time `json:"completed_at"`
	// ServerVersion is the version of the server that took the snapshot.
	ServerVersion string `json:"server_version,omitempty"`
	// Source is the server's URL.
	Source string `json:"source,omitempty"`
}

// Info is what Write records about a snapshot beyond its bytes.
type Info struct {
	Revision      uint64
	ServerVersion string
	Source        string
	// MaxBytesPerSecond limits how fast Write reads the snapshot (and so,
	// through TCP's flow control, how fast the server sends it): a token
	// bucket with bursts of a tenth of a second's worth. 0: no limit. It is
	// not recorded in the manifest.
	MaxBytesPerSecond int64
	// Now is the clock (default time.Now), of the manifest's times and of
	// the rate limit.
	Now func() time.Time
	// Sleep waits for the rate limit (default: a timer that ends early,
	// with ctx's error, when ctx ends). With Now, a test seam.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Write streams snapshot into d as a new backup, hashing it on the way,
// then writes its manifest. It returns the manifest of the complete
// backup. An empty snapshot is refused. With info.MaxBytesPerSecond the
// snapshot is read at most that fast.
func Write(ctx context.Context, d Destination, snapshot io.Reader, info Info) (Manifest, error) {
	now := info.Now
	if now == nil {
		now = time.Now
	}
	start := now().UTC()
	m := Manifest{
		Format:        ManifestFormat,
		Name:          namePrefix + start.Format(nameLayout),
		Revision:      info.Revision,
		StartedAt:     start,
		ServerVersion: info.ServerVersion,
		Source:        info.Source,
	}
	m.Object = m.Name + dataExt
	if info.MaxBytesPerSecond > 0 {
		snapshot = newLimitReader(ctx, snapshot, info.MaxBytesPerSecond, now, info.Sleep)
	} else if info.MaxBytesPerSecond < 0 {
		return Manifest{}, fmt.Errorf("%w: a negative rate limit, %d bytes per second", ErrInvalid, info.MaxBytesPerSecond)
	}
	cr := &countingHash{r: snapshot, h: sha256.New()}
	if err := d.Put(ctx, m.Object, cr); err != nil {
		return Manifest{}, fmt.Errorf("backup %s to %s: %w", m.Name, d.URI(), err)
	}
	m.SHA256, m.SizeBytes = hex.EncodeToString(cr.h.Sum(nil)), cr.n
	if m.SizeBytes == 0 {
		_ = d.Delete(ctx, m.Object)
		return Manifest{}, fmt.Errorf("backup %s to %s: the snapshot was empty", m.Name, d.URI())
	}
	m.CompletedAt = now().UTC()
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return Manifest{}, err
	}
	if err := d.Put(ctx, m.Name+manifestExt, bytes.NewReader(append(b, '\n'))); err != nil {
		return Manifest{}, fmt.Errorf("backup %s to %s: manifest: %w", m.Name, d.URI(), err)
	}
	return m, nil
}

// countingHash hashes and counts what is read through it.
type countingHash struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (c *countingHash) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	return n, err
}

// List returns the manifests of d's complete backups, newest first. A data
// object without a manifest (a backup that failed after its data was
// written) is not listed. An unreadable manifest fails List with
// ErrCorrupt, naming it.
func List(ctx context.Context, d Destination) ([]Manifest, error) {
	keys, err := d.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list backups in %s: %w", d.URI(), err)
	}
	var ms []Manifest
	for _, k := range keys {
		if !strings.HasPrefix(k, namePrefix) || !strings.HasSuffix(k, manifestExt) {
			continue
		}
		m, err := readManifest(ctx, d, strings.TrimSuffix(k, manifestExt))
		if errors.Is(err, ErrNotFound) {
			continue // deleted meanwhile (a concurrent Prune)
		}
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b Manifest) int { return -strings.Compare(a.Name, b.Name) })
	return ms, nil
}

// Latest returns the manifest of d's newest complete backup, or
// ErrNoBackups.
func Latest(ctx context.Context, d Destination) (Manifest, error) {
	ms, err := List(ctx, d)
	if err != nil {
		return Manifest{}, err
	}
	if len(ms) == 0 {
		return Manifest{}, fmt.Errorf("%w %s", ErrNoBackups, d.URI())
	}
	return ms[0], nil
}

func readManifest(ctx context.Context, d Destination, name string) (Manifest, error) {
	rc, err := d.Get(ctx, name+manifestExt)
	if err != nil {
		return Manifest{}, fmt.Errorf("manifest of backup %s in %s: %w", name, d.URI(), err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxManifest+1))
	if err != nil {
		return Manifest{}, fmt.Errorf("manifest of backup %s in %s: %w", name, d.URI(), err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil || len(b) > maxManifest {
		return Manifest{}, fmt.Errorf("%w: manifest of backup %s in %s is not valid JSON: %v", ErrCorrupt, name, d.URI(), err)
	}
	if err := m.check(name); err != nil {
		return Manifest{}, fmt.Errorf("%w: manifest of backup %s in %s: %v", ErrCorrupt, name, d.URI(), err)
	}
	return m, nil
}

func (m Manifest) check(name string) error {
	sum, err := hex.DecodeString(m.SHA256)
	switch {
	case m.Format != ManifestFormat:
		return fmt.Errorf("format %d is not %d", m.Format, ManifestFormat)
	case m.Name != name:
		return fmt.Errorf("name %q is not %q", m.Name, name)
	case m.Object != name+dataExt:
		return fmt.Errorf("object %q is not %q", m.Object, name+dataExt)
	case err != nil || len(sum) != sha256.Size:
		return fmt.Errorf("sha256 %q is not a hex SHA-256", m.SHA256)
	case m.SizeBytes <= 0:
		return fmt.Errorf("size_bytes %d is not positive", m.SizeBytes)
	}
	return nil
}

// Open opens the backup name (a Manifest's Name) of d for reading. The
// reader verifies the bytes as they stream: at their end, a size or
// SHA-256 different from the manifest's is an error wrapping ErrCorrupt
// instead of io.EOF, so a consumer must not trust the bytes before EOF
// (Fetch is the safe way to a file).
func Open(ctx context.Context, d Destination, name string) (io.ReadCloser, Manifest, error) {
	m, err := readManifest(ctx, d, name)
	if err != nil {
		return nil, Manifest{}, err
	}
	rc, err := d.Get(ctx, m.Object)
	if err != nil {
		return nil, Manifest{}, fmt.Errorf("backup %s in %s: %w", name, d.URI(), err)
	}
	return &verifyReader{rc: rc, h: sha256.New(), m: m, uri: d.URI()}, m, nil
}

type verifyReader struct {
	rc  io.ReadCloser
	h   hash.Hash
	n   int64
	m   Manifest
	uri string
}

func (v *verifyReader) Read(p []byte) (int, error) {
	n, err := v.rc.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.n > v.m.SizeBytes {
		return n, fmt.Errorf("%w: backup %s in %s is larger than the %d bytes its manifest says", ErrCorrupt, v.m.Name, v.uri, v.m.SizeBytes)
	}
	if errors.Is(err, io.EOF) {
		if v.n != v.m.SizeBytes {
			return n, fmt.Errorf("%w: backup %s in %s has %d bytes, its manifest says %d", ErrCorrupt, v.m.Name, v.uri, v.n, v.m.SizeBytes)
		}
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.m.SHA256 {
			return n, fmt.Errorf("%w: backup %s in %s has SHA-256 %s, its manifest says %s", ErrCorrupt, v.m.Name, v.uri, got, v.m.SHA256)
		}
	}
	return n, err
}

func (v *verifyReader) Close() error { return v.rc.Close() }

// Fetch copies the backup name of d into a new file path (which must not
// exist), verified against its manifest and, when wantSHA256 is not
// empty, against that SHA-256 too (the manifest lives beside the data it
// vouches for; a checksum recorded elsewhere pins the backup). The file is
// fsynced; on any error it is removed.
func Fetch(ctx context.Context, d Destination, name, path, wantSHA256 string) (Manifest, error) {
	rc, m, err := Open(ctx, d, name)
	if err != nil {
		return Manifest{}, err
	}
	defer rc.Close()
	if wantSHA256 != "" && !strings.EqualFold(wantSHA256, m.SHA256) {
		return Manifest{}, fmt.Errorf("%w: backup %s in %s has SHA-256 %s in its manifest, want %s", ErrCorrupt, name, d.URI(), m.SHA256, wantSHA256)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return Manifest{}, fmt.Errorf("fetch backup %s: %w", name, err)
	}
	_, err = io.Copy(f, ctxReader{ctx, rc})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return Manifest{}, fmt.Errorf("fetch backup %s: %w", name, err)
	}
	return m, nil
}
