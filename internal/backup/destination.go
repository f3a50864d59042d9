package backup

import (
	"context"
	"fmt"
	"io"
)

// Destination is a flat store of named objects, where backups are kept.
// Keys are base names ("kvstore-20261202T173000.123Z.db"); the destination
// maps them under its prefix or directory. Implementations are safe for
// concurrent use.
type Destination interface {
	// Put stores the bytes of r under key, streaming them: the object
	// appears, whole, only when r reached EOF and the destination
	// accepted every byte; if r fails, nothing new is visible under key.
	Put(ctx context.Context, key string, r io.Reader) error
	// Get opens the object stored under key; a missing one is ErrNotFound.
	// The caller closes it.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// List returns the keys of every object, in no particular order.
	List(ctx context.Context) ([]string, error)
	// Delete removes the object under key; a missing one is not an error.
	Delete(ctx context.Context, key string) error
	// URI names the destination (never with credentials).
	URI() string
}

// New returns the Destination loc names; s3 configures an s3 one
// (ignored for file). It does no I/O: a wrong endpoint or credentials
// show on first use.
func New(loc Location, s3 S3Options) (Destination, error) {
	switch loc.Scheme {
	case "file":
		return NewDir(loc.Path), nil
	case "s3":
		return NewS3(loc.Bucket, loc.Prefix, s3)
	}
	return nil, fmt.Errorf("%w destination scheme %q", ErrInvalid, loc.Scheme)
}
