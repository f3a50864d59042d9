package controller

import (
	"crypto/x509"
	"fmt"
	"time"

	"kvstore.dev/kvstore/internal/certs"
)

// tlsMaterial is the content of the operator-issued edge certificate
// Secret <name>-tls.
type tlsMaterial struct {
	bundle    []byte // ca.crt: the CA state's bundle
	cert, key []byte
	notAfter  time.Time // of cert
	renewAt   time.Time // of cert: two thirds of its lifetime
}

// Why a certificate was (re)issued; "" when the existing one was kept.
const (
	tlsKept         = ""
	tlsIssued       = "Issued"       // there was none (or it was unreadable, or from another CA)
	tlsRenewed      = "Renewed"      // past two thirds of its lifetime
	tlsHostsChanged = "HostsChanged" // the Ingress host or namespace changed
)

// decideTLS returns the edge certificate kv should have at now: the
// existing one (tlsData: the data of <name>-tls, nil when absent) while it
// is signed by ca's signer, covers hosts and is short of two thirds of its
// lifetime; otherwise a newly issued one, with the reason. The CA is
// decided before (decideCA) and kept across renewals, so clients that
// trust ca.crt keep trusting the store.
func decideTLS(ca caState, tlsData map[string][]byte, hosts []string, now time.Time) (tlsMaterial, string, error) {
	m := tlsMaterial{bundle: ca.bundle()}
	cert, why := checkServerCert(ca.signer.Cert, tlsData, hosts, now)
	if why == tlsKept {
		m.cert, m.key = tlsData["tls.crt"], tlsData["tls.key"]
		m.notAfter, m.renewAt = cert.NotAfter, certs.RenewAt(cert)
		return m, tlsKept, nil
	}
	pair, err := ca.signer.IssueServer(hosts, certs.ServerValidity, now)
	if err != nil {
		return tlsMaterial{}, "", fmt.Errorf("issue server certificate: %w", err)
	}
	if cert, err = certs.ParseCert(pair.CertPEM); err != nil {
		return tlsMaterial{}, "", err
	}
	m.cert, m.key = pair.CertPEM, pair.KeyPEM
	m.notAfter, m.renewAt = cert.NotAfter, certs.RenewAt(cert)
	return m, why, nil
}

// checkServerCert says why the certificate in tlsData must be re-issued, or
// tlsKept.
func checkServerCert(ca *x509.Certificate, tlsData map[string][]byte, hosts []string, now time.Time) (*x509.Certificate, string) {
	cert, err := certs.ParseCert(tlsData["tls.crt"])
	if err != nil || len(tlsData["tls.key"]) == 0 || cert.CheckSignatureFrom(ca) != nil {
		return nil, tlsIssued
	}
	if !now.Before(certs.RenewAt(cert)) {
		return nil, tlsRenewed
	}
	if renew, _ := certs.NeedsRenewal(tlsData["tls.crt"], hosts, now); renew {
		return nil, tlsHostsChanged
	}
	return cert, tlsKept
}

// checkUserTLS reports what is wrong with a user-provided TLS Secret's data,
// or nil. The Secret is only read, never changed.
func checkUserTLS(secretType string, data map[string][]byte) error {
	if secretType != "kubernetes.io/tls" {
		return fmt.Errorf("type is %q, want kubernetes.io/tls", secretType)
	}
	if len(data["tls.key"]) == 0 {
		return fmt.Errorf("key tls.key is missing or empty")
	}
	if _, err := certs.ParseCert(data["tls.crt"]); err != nil {
		return fmt.Errorf("key tls.crt: %w", err)
	}
	return nil
}
