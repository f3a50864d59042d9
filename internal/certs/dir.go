package certs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// File names inside a certificate directory.
const (
	CACertFile     = "ca.crt"
	CAKeyFile      = "ca.key"
	ServerCertFile = "server.crt"
	ServerKeyFile  = "server.key"
)

// Default validities.
const (
	CAValidity     = 10 * 365 * 24 * time.Hour
	ServerValidity = 365 * 24 * time.Hour
)

// Outcome says what EnsureDir did.
type Outcome string

// The outcomes of EnsureDir.
const (
	UserProvided Outcome = "user-provided" // server.crt exists and there is no ca.key: never touched
	Valid        Outcome = "valid"         // our certificate is still good
	Issued       Outcome = "issued"        // a new CA and/or server certificate was written
)

// EnsureDir makes sure dir holds a usable server.crt and server.key for
// hosts. A certificate the user brought (server.crt without our ca.key) is
// left alone. Otherwise a CA is created if missing, and the server
// certificate is (re)issued when missing, past two thirds of its life, or
// missing one of hosts. Keys are written with mode 0600, certificates 0644,
// each through a temporary file and a rename.
func EnsureDir(dir string, hosts []string, now time.Time) (Outcome, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("certificate dir: %w", err)
	}
	path := func(name string) string { return filepath.Join(dir, name) }
	serverPEM, serverErr := os.ReadFile(path(ServerCertFile))
	_, caKeyErr := os.Stat(path(CAKeyFile))
	if serverErr == nil && errors.Is(caKeyErr, os.ErrNotExist) {
		if _, err := os.Stat(path(ServerKeyFile)); err != nil {
			return "", fmt.Errorf("%s exists but %s does not: %w", ServerCertFile, ServerKeyFile, err)
		}
		return UserProvided, nil
	}

	var ca *CA
	caPEM, err1 := os.ReadFile(path(CACertFile))
	caKey, err2 := os.ReadFile(path(CAKeyFile))
	if err1 == nil && err2 == nil {
		var err error
		if ca, err = ParseCA(caPEM, caKey); err != nil {
			return "", fmt.Errorf("%s: %w", dir, err)
		}
		if !now.Before(RenewAt(ca.Cert)) {
			ca = nil // an aging CA is replaced along with the server certificate
		}
	}
	if ca != nil && serverErr == nil {
		if renew, err := NeedsRenewal(serverPEM, hosts, now); err == nil && !renew {
			return Valid, nil
		}
	}
	if ca == nil {
		var err error
		if ca, err = NewCA("kvstore self-signed CA", CAValidity, now); err != nil {
			return "", err
		}
		if err := writeFile(path(CAKeyFile), ca.KeyPEM, 0o600); err != nil {
			return "", err
		}
		if err := writeFile(path(CACertFile), ca.CertPEM, 0o644); err != nil {
			return "", err
		}
	}
	pair, err := ca.IssueServer(hosts, ServerValidity, now)
	if err != nil {
		return "", err
	}
	if err := writeFile(path(ServerKeyFile), pair.KeyPEM, 0o600); err != nil {
		return "", err
	}
	if err := writeFile(path(ServerCertFile), pair.CertPEM, 0o644); err != nil {
		return "", err
	}
	return Issued, nil
}

func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return fmt.Errorf("chmod %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("install %s: %w", path, err)
	}
	return nil
}
