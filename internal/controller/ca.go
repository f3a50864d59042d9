package controller

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"time"

	"kvstore.dev/kvstore/internal/certs"
)

// The CA of a KVStore lives in <name>-ca. Every Secret that carries a
// trust bundle (ca.crt in <name>-tls and <name>-pod-tls) gets the bundle of
// the CA state, so clients and pods always trust every CA a live leaf may
// come from.
//
// Rotation runs in phases, each recorded on <name>-ca (the keys it holds,
// and the annotations CARotationAnnotation and CARotationSinceAnnotation):
//
//   - Stable: ca.crt/ca.key sign, and the bundle is ca.crt alone. When the
//     CA is past two thirds of its lifetime a new CA is made: Adding.
//   - Adding: next.crt/next.key hold the new CA, which signs nothing yet;
//     the bundle is old + new. Once caPropagation has passed (the pods and
//     the Ingress have read the new bundle): Reissuing.
//   - Reissuing: the new CA is ca.crt/ca.key and signs; the old one stays
//     trusted as previous.crt, the bundle is still old + new, and every
//     leaf (edge, API and peer certificates) is re-issued. Once caPropagation
//     has passed again and every observed leaf verifies against the new CA:
//     Stable, with the old CA dropped from the bundle.
//
// A CA that is missing or unreadable is replaced at once (nothing could be
// rotated from it); so is a previous or next CA that is unreadable.
type caPhase string

const (
	caStable    caPhase = ""
	caAdding    caPhase = "Adding"
	caReissuing caPhase = "Reissuing"
)

// Keys of <name>-ca besides ca.crt and ca.key.
const (
	caNextCertKey     = "next.crt"
	caNextKeyKey      = "next.key"
	caPreviousCertKey = "previous.crt"
)

// caPropagation is how long a rotation phase lasts at least: long enough
// for a changed Secret to reach every pod's volume (the kubelet's sync
// period plus its cache TTL, a minute or two) and the Ingress controller.
const caPropagation = 5 * time.Minute

// Why the CA state changed (event reasons), or caKept.
const (
	caKept          = ""
	caIssued        = "CAIssued"          // there was none
	caReplaced      = "CAReplaced"        // it was unreadable
	caRotationStart = "CARotationStarted" // Stable → Adding
	caRotationLeafs = "CARotationReissue" // Adding → Reissuing
	caRotationDone  = "CARotationDone"    // Reissuing → Stable
)

// caState is the CA of a KVStore after decideCA: the signer of every leaf,
// the CA trusted beside it during a rotation, and the phase.
type caState struct {
	signer      *certs.CA
	next        *certs.CA // Adding: the CA that will sign next
	previousPEM []byte    // Reissuing: the CA that signed before
	phase       caPhase
	since       time.Time // when the phase began (zero when Stable)
	reason      string    // what decideCA changed, caKept when nothing
}

// bundle is the trust bundle of the state: the signer, with the next or
// previous CA during a rotation.
func (s caState) bundle() []byte {
	b := bytes.Clone(s.signer.CertPEM)
	switch {
	case s.next != nil:
		b = append(b, s.next.CertPEM...)
	case s.previousPEM != nil:
		b = append(s.previousPEM[:len(s.previousPEM):len(s.previousPEM)], b...)
	}
	return b
}

// data is the content of <name>-ca for the state.
func (s caState) data() map[string][]byte {
	d := map[string][]byte{caCertKey: s.signer.CertPEM, caKeyKey: s.signer.KeyPEM}
	if s.next != nil {
		d[caNextCertKey], d[caNextKeyKey] = s.next.CertPEM, s.next.KeyPEM
	}
	if s.previousPEM != nil {
		d[caPreviousCertKey] = s.previousPEM
	}
	return d
}

// annotations are those of <name>-ca recording the phase (none when
// Stable).
func (s caState) annotations() map[string]string {
	if s.phase == caStable {
		return nil
	}
	return map[string]string{CARotationAnnotation: string(s.phase), CARotationSinceAnnotation: s.since.UTC().Format(time.RFC3339)}
}

// nextAt is when the state must be looked at again without an event: the
// end of the phase, or when the signer is due for rotation.
func (s caState) nextAt() time.Time {
	if s.phase != caStable {
		return s.since.Add(caPropagation)
	}
	return certs.RenewAt(s.signer.Cert)
}

// decideCA is the CA state machine (see caPhase): a pure function of the
// data and annotations of <name>-ca (nil when absent), whether every leaf
// observed was signed by its current signer (leavesCurrent), and now. New
// CA keys come from crypto/rand.
func decideCA(data map[string][]byte, annotations map[string]string, leavesCurrent bool, now time.Time) (caState, error) {
	fresh := func(reason string) (caState, error) {
		ca, err := certs.NewCA("kvstore operator CA", certs.CAValidity, now)
		if err != nil {
			return caState{}, fmt.Errorf("new CA: %w", err)
		}
		return caState{signer: ca, reason: reason}, nil
	}
	signer, err := certs.ParseCA(data[caCertKey], data[caKeyKey])
	if err != nil {
		if data == nil {
			return fresh(caIssued)
		}
		return fresh(caReplaced)
	}
	phase := caPhase(annotations[CARotationAnnotation])
	since, err := time.Parse(time.RFC3339, annotations[CARotationSinceAnnotation])
	if err != nil {
		since = now // unreadable: the phase starts over, which only waits longer
	}
	st := caState{signer: signer, phase: phase, since: since}
	switch phase {
	case caAdding:
		next, err := certs.ParseCA(data[caNextCertKey], data[caNextKeyKey])
		if err != nil {
			return startRotation(signer, now)
		}
		st.next = next
		if now.Before(since.Add(caPropagation)) {
			return st, nil
		}
		return caState{signer: next, previousPEM: signer.CertPEM, phase: caReissuing, since: now, reason: caRotationLeafs}, nil
	case caReissuing:
		prev, err := certs.ParseCert(data[caPreviousCertKey])
		if err != nil || !now.Before(prev.NotAfter) {
			return caState{signer: signer, reason: caRotationDone}, nil
		}
		st.previousPEM = data[caPreviousCertKey]
		if now.Before(since.Add(caPropagation)) || !leavesCurrent {
			return st, nil
		}
		return caState{signer: signer, reason: caRotationDone}, nil
	}
	st.phase, st.since = caStable, time.Time{}
	if !now.Before(certs.RenewAt(signer.Cert)) {
		return startRotation(signer, now)
	}
	return st, nil
}

// startRotation is the Adding state with a new next CA beside signer.
func startRotation(signer *certs.CA, now time.Time) (caState, error) {
	next, err := certs.NewCA("kvstore operator CA", certs.CAValidity, now)
	if err != nil {
		return caState{}, fmt.Errorf("new CA: %w", err)
	}
	return caState{signer: signer, next: next, phase: caAdding, since: now, reason: caRotationStart}, nil
}

// signedBy reports whether every PEM certificate in leaves (nil entries
// are skipped) verifies against ca.
func signedBy(ca *x509.Certificate, leaves ...[]byte) bool {
	for _, l := range leaves {
		if l == nil {
			continue
		}
		c, err := certs.ParseCert(l)
		if err != nil || c.CheckSignatureFrom(ca) != nil {
			return false
		}
	}
	return true
}
