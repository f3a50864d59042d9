// Package healthcheck is the `kvstore healthcheck` subcommand: it probes a
// running server's /readyz for container healthchecks, because the server
// image has no curl. It speaks HTTP or HTTPS. Over HTTPS it verifies the
// server against --ca-file when given; without one, a loopback URL
// (127.0.0.0/8, ::1, localhost) is probed without verification, since the
// probe asks a process in the same network namespace whether it is ready
// and sends no secret, and any other host is verified against the system
// roots. --cert-file and --key-file present a client certificate to a
// listener that requires one (api.tls.client_ca_file).
//
// With --put-get it checks more than health: after the URL answers, it
// writes a fresh key under helm-test/ on the same server with the token in
// --token-file, reads it back, deletes it and sees it gone (the `helm
// test` check of the chart, which runs in the server image: no shell, no
// curl). The token is read from a file, never from the command line.
package healthcheck

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"kvstore.dev/kvstore/wire"
)

// Run parses args and probes the URL once; nil means it answered 200.
func Run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("kvstore healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rawURL := fs.String("url", "http://127.0.0.1:8080/readyz", "`URL` that must answer 200 (http or https)")
	timeout := fs.Duration("timeout", 3*time.Second, "request timeout")
	caFile := fs.String("ca-file", "", "CA bundle `file` to verify an https server with (default: none for a loopback URL, else the system roots)")
	certFile := fs.String("cert-file", "", "client certificate `file` (PEM), for a listener requiring client certificates")
	keyFile := fs.String("key-file", "", "client key `file` (PEM), with --cert-file")
	putGet := fs.Bool("put-get", false, "then write a key under helm-test/ on the same server, read it back, delete it and see it gone (needs --token-file)")
	tokenFile := fs.String("token-file", "", "`file` holding the bearer token for --put-get (a trailing newline is ignored)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var token string
	if *putGet {
		if *tokenFile == "" {
			return errors.New("healthcheck: --put-get needs --token-file")
		}
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			return fmt.Errorf("healthcheck: --token-file: %w", err)
		}
		if token = strings.TrimRight(string(b), "\r\n"); token == "" {
			return fmt.Errorf("healthcheck: --token-file: %s is empty", *tokenFile)
		}
	}
	u, err := url.Parse(*rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("healthcheck: --url %q is not an http(s) URL", *rawURL)
	}
	tlsCfg, err := clientTLS(u, *caFile, *certFile, *keyFile)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg, Proxy: nil}}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s", u, resp.Status)
	}
	if *putGet {
		return putGetCheck(ctx, client, u, token)
	}
	return nil
}

// putGetCheck writes a fresh key on u's server, reads it back, deletes it
// and checks it is gone.
func putGetCheck(ctx context.Context, client *http.Client, u *url.URL, token string) error {
	key := "helm-test/" + rand.Text()
	value := []byte("written by kvstore healthcheck --put-get at " + time.Now().UTC().Format(time.RFC3339Nano))
	base := &url.URL{Scheme: u.Scheme, Host: u.Host, Path: wire.KeyPath(key)}
	steps := []struct {
		method string
		body   []byte
		want   []int
	}{
		{http.MethodPut, value, []int{http.StatusOK, http.StatusCreated}},
		{http.MethodGet, nil, []int{http.StatusOK}},
		{http.MethodDelete, nil, []int{http.StatusOK, http.StatusNoContent}},
		{http.MethodGet, nil, []int{http.StatusNotFound}},
	}
	for i, st := range steps {
		req, err := http.NewRequestWithContext(ctx, st.method, base.String(), bytes.NewReader(st.body))
		if err != nil {
			return fmt.Errorf("healthcheck: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		if st.body != nil {
			req.Header.Set("Content-Type", "application/octet-stream")
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("healthcheck: %s %s: %w", st.method, key, err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("healthcheck: %s %s: %w", st.method, key, err)
		}
		if !slices.Contains(st.want, resp.StatusCode) {
			return fmt.Errorf("healthcheck: %s %s answered %s: %s", st.method, key, resp.Status, bytes.TrimSpace(body))
		}
		if i == 1 && !bytes.Equal(body, value) {
			return fmt.Errorf("healthcheck: GET %s read %q, wrote %q", key, body, value)
		}
	}
	return nil
}

// clientTLS is the probe's TLS configuration for u (see the package doc).
func clientTLS(u *url.URL, caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("--cert-file and --key-file go together")
	}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("--cert-file, --key-file: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	switch {
	case caFile != "":
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca-file: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca-file: %s holds no PEM certificate", caFile)
		}
	case u.Scheme == "https" && IsLoopback(u.Hostname()):
		cfg.InsecureSkipVerify = true // loopback only: see the package doc
	}
	return cfg, nil
}

// IsLoopback reports whether host (a name or an address, without a port)
// is this machine's loopback: "localhost" or an address in 127.0.0.0/8 or
// ::1.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
