//go:build kube

package kube

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kvstore.dev/kvstore/internal/certs"
	"kvstore.dev/kvstore/test/harness/kube"
)

// peerPort is the servers' peer port (Raft and the peer API) in the pods.
const peerPort = 7000

// testPeerTLS dials a running pod's peer port from outside the KVStore (the
// host, which routes to pod IPs) and checks that only a certificate of the
// KVStore's own CA naming the KVStore's own cluster is let in: no client
// certificate, one from another CA with the right cluster name, and one of
// the right CA for another cluster are all refused by the server, while the
// right one gets through the handshake and is left waiting for a preamble.
// The API port, on the same pod, serves TLS 1.2 at the lowest.
func testPeerTLS(t *testing.T, k *kube.Cluster) {
	s := newStore(t, k, "mtls", 3, small)
	pods := s.Pods(t)
	if len(pods) == 0 {
		t.Fatal("no pods")
	}
	pod := pods[0]
	var caSecret corev1.Secret
	if err := k.Client(t).Get(context.Background(), client.ObjectKey{Namespace: s.Namespace, Name: s.Name + "-ca"}, &caSecret); err != nil {
		t.Fatal(err)
	}
	ca, err := certs.ParseCA(caSecret.Data["ca.crt"], caSecret.Data["ca.key"])
	if err != nil {
		t.Fatalf("the KVStore's CA: %v", err)
	}
	other, err := certs.NewCA("another kvstore CA", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caSecret.Data["ca.crt"])
	issue := func(ca *certs.CA, cluster string) []tls.Certificate {
		p, err := ca.IssuePeer(cluster, "intruder", nil, time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		c, err := tls.X509KeyPair(p.CertPEM, p.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		return []tls.Certificate{c}
	}
	addr := net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(peerPort))
	tests := []struct {
		name   string
		certs  []tls.Certificate
		refuse bool
	}{
		{"no client certificate", nil, true},
		{"another CA, the same cluster name", issue(other, s.Name), true},
		{"the KVStore's CA, another cluster", issue(ca, "not-"+s.Name), true},
		{"the KVStore's CA and cluster", issue(ca, s.Name), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// What is tested is the server's check of the client; the
			// server's certificate is not verified here.
			err := dialPeer(addr, &tls.Config{Certificates: tt.certs, InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
			var ne net.Error
			admitted := errors.As(err, &ne) && ne.Timeout()
			switch {
			case tt.refuse && admitted:
				t.Errorf("%s: the peer port kept the connection open (%v), want it refused", addr, err)
			case !tt.refuse && !admitted:
				t.Errorf("%s: the peer port refused the KVStore's own certificate: %v", addr, err)
			default:
				t.Logf("%s: %v", addr, err)
			}
		})
	}

	apiAddr := net.JoinHostPort(pod.Status.PodIP, "8080")
	c, err := tls.Dial("tcp", apiAddr, &tls.Config{RootCAs: roots, ServerName: s.Name + "." + s.Namespace + ".svc", MaxVersion: tls.VersionTLS11})
	if err == nil {
		c.Close()
		t.Errorf("%s accepted TLS 1.1", apiAddr)
	}
}

// dialPeer opens a TLS connection to addr and reads from it for 3 s (the server gives a client 5 s to send
// its preamble). A
// server that refuses the client's certificate sends an alert (TLS 1.3
// checks the client's certificate after the client's handshake ends, so the
// alert comes on the first read) or closes; one that admits it waits for
// the client to speak, and the read times out.
func dialPeer(addr string, cfg *tls.Config) error {
	d := &net.Dialer{Timeout: 10 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err = c.Read(make([]byte, 1))
	return err
}
