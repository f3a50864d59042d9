package backup

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Dir is a Destination in a local directory: a mounted volume or a PVC.
// Put writes a hidden temporary file, fsyncs it and renames it into place,
// so an object is either whole or absent.
type Dir struct {
	root string
}

// NewDir returns the directory destination rooted at root, which Put
// creates (mode 0700) when missing.
func NewDir(root string) *Dir { return &Dir{root: root} }

// URI is file://<root>.
func (d *Dir) URI() string { return Location{Scheme: "file", Path: d.root}.String() }

func (d *Dir) path(key string) (string, error) {
	if key == "" || strings.ContainsAny(key, `/\`) || key[0] == '.' {
		return "", fmt.Errorf("%w key %q", ErrInvalid, key)
	}
	return filepath.Join(d.root, key), nil
}

// Put streams r into the file key.
func (d *Dir) Put(ctx context.Context, key string, r io.Reader) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(d.root, 0o700); err != nil {
		return fmt.Errorf("backup directory: %w", err)
	}
	tmp := filepath.Join(d.root, "."+key+".partial-"+rand.Text())
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	defer os.Remove(tmp) // after a successful rename this finds nothing
	_, err = io.Copy(f, ctxReader{ctx, r})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err == nil {
		err = syncDir(d.root)
	}
	if err != nil {
		return fmt.Errorf("put %s in %s: %w", key, d.root, err)
	}
	return nil
}

// Get opens the file key.
func (d *Dir) Get(_ context.Context, key string) (io.ReadCloser, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, p)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return f, nil
}

// List lists the directory's regular files, except the temporary files of
// Puts under way; a missing directory holds nothing.
func (d *Dir) List(context.Context) ([]string, error) {
	entries, err := os.ReadDir(d.root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", d.root, err)
	}
	var keys []string
	for _, e := range entries {
		if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
			keys = append(keys, e.Name())
		}
	}
	return keys, nil
}

// Delete removes the file key.
func (d *Dir) Delete(_ context.Context, key string) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// ctxReader stops a copy when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
