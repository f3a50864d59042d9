package controller

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	kvv1 "kvstore.dev/kvstore/api/v1"
	kvclient "kvstore.dev/kvstore/client"
	"kvstore.dev/kvstore/internal/backup"
)

// HTTPSnapshotSource is the SnapshotSource of a real cluster: it asks the
// client Service for the cluster's status, picks a caught-up follower
// (else the leader, pickSnapshotMember) and streams GET /api/v1/snapshot
// from that pod, over HTTPS verified as HTTPClusterClient verifies.
type HTTPSnapshotSource struct {
	Options BuildOptions
	// ServiceURL and PodURL override the client Service's and a pod's
	// URL (tests).
	ServiceURL func(kv *kvv1.KVStore) string
	PodURL     func(kv *kvv1.KVStore, pod string) string
	// RetryEvery is how often the cluster's status is asked again while
	// no member can be streamed from (memberRetry when zero; tests).
	RetryEvery time.Duration
}

// httpClient is the client that reaches kv's pods with a.
func (s *HTTPSnapshotSource) httpClient(kv *kvv1.KVStore, a ServerAccess) (*http.Client, error) {
	tr := &http.Transport{Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true, ResponseHeaderTimeout: time.Minute}
	if podAPITLS(kv) {
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(a.CABundle) {
			return nil, fmt.Errorf("reach %s/%s: no CA certificate in the pods' bundle", kv.Namespace, kv.Name)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: roots, ServerName: apiServerName(kv), MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr}, nil
}

// memberWait is how long a backup waits for a member to stream from (a
// leader, or a caught-up follower) before it fails: an election, or a
// client Service without ready endpoints for a moment, is not a failed
// backup.
const memberWait = time.Minute

// memberRetry is how often the cluster's status is asked again meanwhile.
const memberRetry = 2 * time.Second

// member asks the client Service for the cluster's status and picks the
// member to stream from, asking again every RetryEvery (memberRetry) for
// up to memberWait (or ctx's end) while there is none or no answer.
func (s *HTTPSnapshotSource) member(ctx context.Context, kv *kvv1.KVStore, a ServerAccess, hc *http.Client) (string, error) {
	svc := fmt.Sprintf("%s://%s.%s.svc.%s:%d", apiScheme(kv), kv.Name, kv.Namespace, clusterDomain(s.Options), httpPort)
	if s.ServiceURL != nil {
		svc = s.ServiceURL(kv)
	}
	every := s.RetryEvery
	if every <= 0 {
		every = memberRetry
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, memberWait)
	defer cancel()
	c := kvclient.New(svc, kvclient.WithToken(a.Token), kvclient.WithHTTPClient(hc))
	for {
		sctx, scancel := context.WithTimeout(ctx, clusterCallTimeout)
		view, err := c.ClusterStatus(sctx)
		scancel()
		if err != nil {
			err = fmt.Errorf("cluster status: %w", err)
		} else if pod := pickSnapshotMember(view); pod != "" {
			return pod, nil
		} else {
			err = errors.New("no leader and no caught-up follower to take the snapshot from")
		}
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return "", fmt.Errorf("%w (gave up after %s)", err, time.Since(start).Round(time.Second))
		case <-t.C:
		}
	}
}

// Member implements SnapshotSource.
func (s *HTTPSnapshotSource) Member(ctx context.Context, kv *kvv1.KVStore, a ServerAccess) (string, error) {
	hc, err := s.httpClient(kv, a)
	if err != nil {
		return "", err
	}
	return s.member(ctx, kv, a, hc)
}

// Snapshot implements SnapshotSource.
func (s *HTTPSnapshotSource) Snapshot(ctx context.Context, kv *kvv1.KVStore, a ServerAccess) (io.ReadCloser, backup.Info, string, error) {
	hc, err := s.httpClient(kv, a)
	if err != nil {
		return nil, backup.Info{}, "", err
	}
	pod, err := s.member(ctx, kv, a, hc)
	if err != nil {
		return nil, backup.Info{}, "", err
	}
	url := fmt.Sprintf("%s://%s.%s.%s.svc.%s:%d", apiScheme(kv), pod, namesFor(kv).peers, kv.Namespace, clusterDomain(s.Options), httpPort)
	if s.PodURL != nil {
		url = s.PodURL(kv, pod)
	}
	src := &backup.Source{URL: url, Token: func() (string, error) { return a.Token, nil }, Client: hc, MaxBusyRetries: 3}
	body, info, err := src.Snapshot(ctx)
	if err != nil {
		return nil, backup.Info{}, "", err
	}
	info.Source = pod
	return body, info, pod, nil
}
