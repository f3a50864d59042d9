package backup

import "errors"

// Errors of the package; wrapped with context, test them with errors.Is.
var (
	// ErrNotFound: the destination holds no such object (or backup).
	ErrNotFound = errors.New("backup: not found")
	// ErrNoBackups: the destination holds no complete backup.
	ErrNoBackups = errors.New("backup: no backups in the destination")
	// ErrCorrupt: a backup's bytes do not match its manifest (SHA-256 or
	// size), or its manifest is unreadable.
	ErrCorrupt = errors.New("backup: corrupt backup")
	// ErrInvalid: a URI, option or retention is not valid.
	ErrInvalid = errors.New("backup: invalid")
)
