// Package certs makes the self-signed certificate authority and server
// certificates kvstore uses when the user brings none: in docker compose
// (the `kvstore certs` one-shot step) and in Kubernetes (the operator). It
// also holds the peer identity (peer.go): the cluster URI SAN
// kvstore://cluster/<name> that peer certificates carry, how to issue and
// load them. Keys are ECDSA P-256, encoded as PKCS#8 PEM; certificates are
// X.509 PEM.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"time"
)

// CA is a certificate authority able to issue server certificates.
type CA struct {
	Cert    *x509.Certificate
	Key     *ecdsa.PrivateKey
	CertPEM []byte
	KeyPEM  []byte
}

// Pair is a PEM-encoded certificate and its private key.
type Pair struct {
	CertPEM []byte
	KeyPEM  []byte
}

// NewCA creates a self-signed CA valid from now for validity.
func NewCA(commonName string, validity time.Duration, now time.Time) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"kvstore"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, _ := x509.ParseCertificate(der)
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, CertPEM: encodeCert(der), KeyPEM: keyPEM}, nil
}

// ParseCA loads a CA from PEM.
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	cert, err := ParseCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	if !cert.IsCA {
		return nil, errors.New("CA certificate: not a CA")
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, errors.New("CA key: no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || !key.PublicKey.Equal(cert.PublicKey) {
		return nil, errors.New("CA key: does not match the CA certificate")
	}
	return &CA{Cert: cert, Key: key, CertPEM: certPEM, KeyPEM: keyPEM}, nil
}

// IssueServer issues a server certificate for hosts (DNS names or IP
// addresses) valid from now for validity, capped at the CA's own expiry.
func (ca *CA) IssueServer(hosts []string, validity time.Duration, now time.Time) (Pair, error) {
	if len(hosts) == 0 {
		return Pair{}, errors.New("at least one host is required")
	}
	return ca.issue(pkix.Name{CommonName: hosts[0], Organization: []string{"kvstore"}}, hosts, nil,
		[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, validity, now)
}

// IssueClient issues a client certificate (client-auth usage only) with
// the common name name, valid from now for validity, capped at the CA's own
// expiry: what a server requiring client certificates (api.tls
// client_ca_file) accepts from an application.
func (ca *CA) IssueClient(name string, validity time.Duration, now time.Time) (Pair, error) {
	if name == "" {
		return Pair{}, errors.New("a client name is required")
	}
	return ca.issue(pkix.Name{CommonName: name, Organization: []string{"kvstore"}}, nil, nil,
		[]x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, validity, now)
}

// issue signs a fresh P-256 key's certificate for subject, hosts (DNS
// names or IP addresses) and uris, with the extended key usages eku,
// valid from now for validity capped at the CA's own expiry.
func (ca *CA) issue(subject pkix.Name, hosts []string, uris []*url.URL, eku []x509.ExtKeyUsage, validity time.Duration, now time.Time) (Pair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Pair{}, fmt.Errorf("generate key: %w", err)
	}
	notAfter := now.Add(validity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      subject,
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  eku,
		URIs:         uris,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return Pair{}, fmt.Errorf("create certificate for %s: %w", subject.CommonName, err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return Pair{}, err
	}
	return Pair{CertPEM: encodeCert(der), KeyPEM: keyPEM}, nil
}

// ParseCert parses the first certificate in PEM data.
func ParseCert(certPEM []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no CERTIFICATE PEM block")
	}
	return x509.ParseCertificate(block.Bytes)
}

// RenewAt is when a certificate should be re-issued: two thirds of the way
// through its validity.
func RenewAt(cert *x509.Certificate) time.Time {
	life := cert.NotAfter.Sub(cert.NotBefore)
	return cert.NotBefore.Add(life * 2 / 3)
}

// NeedsRenewal reports whether the certificate in certPEM is past RenewAt,
// or lacks one of hosts, at now.
func NeedsRenewal(certPEM []byte, hosts []string, now time.Time) (bool, error) {
	cert, err := ParseCert(certPEM)
	if err != nil {
		return true, err
	}
	if !now.Before(RenewAt(cert)) {
		return true, nil
	}
	for _, h := range hosts {
		if cert.VerifyHostname(h) != nil {
			return true, nil
		}
	}
	return false, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}
