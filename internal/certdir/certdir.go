// Package certdir keeps the compose stack's certificates in two
// directories: a private one holding the CA (ca.key, ca.crt and the
// server pair it issued), which only the one-shot `kvstore certs` step
// mounts, and a public one holding only what the TLS endpoints need
// (server.crt, server.key and ca.crt), which nginx and the app mount. So the
// key that could mint certificates for any name never reaches a long-running
// container.
//
// Ensure issues through certs.EnsureDir on the private directory, then
// publishes. A certificate the user brought (a server.crt in the public
// directory that the private CA did not issue) is never touched. A public
// directory of the former single-directory layout, which held ca.key, is
// migrated: its CA moves to the private directory and ca.key is removed
// from the public one.
package certdir

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"kvstore.dev/kvstore/internal/certs"
)

// Ensure makes sure publicDir holds a usable server.crt, server.key and
// ca.crt for hosts, and that the CA key lives in caDir only (see the
// package doc). It returns what certs.EnsureDir did, or certs.UserProvided.
func Ensure(publicDir, caDir string, hosts []string, now time.Time) (certs.Outcome, error) {
	if err := os.MkdirAll(publicDir, 0o755); err != nil {
		return "", fmt.Errorf("certificate dir: %w", err)
	}
	if err := os.MkdirAll(caDir, 0o700); err != nil {
		return "", fmt.Errorf("CA dir: %w", err)
	}
	pub := func(name string) string { return filepath.Join(publicDir, name) }
	priv := func(name string) string { return filepath.Join(caDir, name) }

	migrated, err := migrate(pub, priv)
	if err != nil {
		return "", err
	}
	if serverPEM, err := os.ReadFile(pub(certs.ServerCertFile)); err == nil && !migrated && !issuedBy(serverPEM, priv(certs.CACertFile)) {
		if _, err := os.Stat(pub(certs.ServerKeyFile)); err != nil {
			return "", fmt.Errorf("%s exists but %s does not: %w", pub(certs.ServerCertFile), certs.ServerKeyFile, err)
		}
		return certs.UserProvided, nil
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read %s: %w", pub(certs.ServerCertFile), err)
	}
	outcome, err := certs.EnsureDir(caDir, hosts, now)
	if err != nil {
		return "", err
	}
	for _, f := range []struct {
		name string
		mode os.FileMode
	}{{certs.ServerKeyFile, 0o600}, {certs.ServerCertFile, 0o644}, {certs.CACertFile, 0o644}} {
		if err := copyFile(priv(f.name), pub(f.name), f.mode); err != nil {
			return "", err
		}
	}
	return outcome, nil
}

// migrate moves the CA of the former layout (ca.key in the public
// directory) to the private one, unless that already has a CA, and removes
// ca.key from the public directory. It reports whether there was one: the
// public server certificate is then ours, whichever CA issued it.
func migrate(pub, priv func(string) string) (bool, error) {
	if _, err := os.Stat(pub(certs.CAKeyFile)); errors.Is(err, os.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("stat %s: %w", pub(certs.CAKeyFile), err)
	}
	if _, err := os.Stat(priv(certs.CAKeyFile)); errors.Is(err, os.ErrNotExist) {
		for _, f := range []struct {
			name string
			mode os.FileMode
		}{{certs.CAKeyFile, 0o600}, {certs.CACertFile, 0o644}, {certs.ServerKeyFile, 0o600}, {certs.ServerCertFile, 0o644}} {
			if err := copyFile(pub(f.name), priv(f.name), f.mode); err != nil && !errors.Is(err, os.ErrNotExist) {
				return false, err
			}
		}
	}
	if err := os.Remove(pub(certs.CAKeyFile)); err != nil {
		return false, fmt.Errorf("remove %s from the public directory: %w", certs.CAKeyFile, err)
	}
	return true, nil
}

// issuedBy reports whether the certificate in serverPEM was signed by the
// CA certificate in caFile.
func issuedBy(serverPEM []byte, caFile string) bool {
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return false
	}
	ca, err1 := certs.ParseCert(caPEM)
	leaf, err2 := certs.ParseCert(serverPEM)
	return err1 == nil && err2 == nil && leaf.CheckSignatureFrom(ca) == nil
}

// copyFile installs src's contents at dst with mode, through a temporary
// file and a rename, unless dst already holds them.
func copyFile(src, dst string, mode os.FileMode) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("read %s: %w", src, err)
	}
	if old, err := os.ReadFile(dst); err == nil && bytes.Equal(old, data) {
		return nil
	}
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return fmt.Errorf("chmod %s: %w", dst, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("install %s: %w", dst, err)
	}
	return nil
}
