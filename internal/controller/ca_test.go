package controller

import (
	"bytes"
	"maps"
	"slices"
	"testing"
	"time"

	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	kvv1 "kvstore.dev/kvstore/api/v1"
	"kvstore.dev/kvstore/internal/certs"
)

// TestDecideCA walks the CA state machine: each case is the observed
// <name>-ca (as the previous step left it), whether the leaves are
// current, and the clock; it checks the phase, the reason, which CA
// signs and what the bundle holds.
func TestDecideCA(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	stable := newCA(t, t0)
	due := certs.RenewAt(stable.signer.Cert)
	adding, err := decideCA(stable.data(), nil, true, due)
	if err != nil {
		t.Fatal(err)
	}
	if adding.phase != caAdding || adding.reason != caRotationStart || adding.next == nil {
		t.Fatalf("at the CA's renewal time: phase %q reason %q", adding.phase, adding.reason)
	}
	reissuing, err := decideCA(adding.data(), adding.annotations(), true, due.Add(caPropagation))
	if err != nil {
		t.Fatal(err)
	}
	if reissuing.phase != caReissuing || !bytes.Equal(reissuing.signer.CertPEM, adding.next.CertPEM) {
		t.Fatalf("after the propagation delay: phase %q, signer is the new CA = %v", reissuing.phase, bytes.Equal(reissuing.signer.CertPEM, adding.next.CertPEM))
	}
	end := reissuing.since.Add(caPropagation)

	oldCA, newCA := stable.signer.CertPEM, adding.next.CertPEM
	both := func(a, b []byte) []byte { return append(bytes.Clone(a), b...) }
	cases := map[string]struct {
		data          map[string][]byte
		annotations   map[string]string
		leavesCurrent bool
		now           time.Time
		phase         caPhase
		reason        string
		signer        []byte // nil: a new CA
		bundle        []byte // nil: the signer alone
	}{
		"none: issued":            {nil, nil, false, t0, caStable, caIssued, nil, nil},
		"unreadable: replaced":    {map[string][]byte{caCertKey: []byte("x")}, nil, false, t0, caStable, caReplaced, nil, nil},
		"valid: kept":             {stable.data(), nil, true, t0.Add(24 * time.Hour), caStable, caKept, oldCA, nil},
		"just before due: kept":   {stable.data(), nil, true, due.Add(-time.Second), caStable, caKept, oldCA, nil},
		"due: adding":             {stable.data(), nil, true, due, caAdding, caRotationStart, oldCA, nil},
		"adding: waits":           {adding.data(), adding.annotations(), true, due.Add(caPropagation - time.Second), caAdding, caKept, oldCA, both(oldCA, newCA)},
		"adding: new CA signs":    {adding.data(), adding.annotations(), true, due.Add(caPropagation), caReissuing, caRotationLeafs, newCA, both(oldCA, newCA)},
		"reissuing: waits":        {reissuing.data(), reissuing.annotations(), true, end.Add(-time.Second), caReissuing, caKept, newCA, both(oldCA, newCA)},
		"reissuing: old leaves":   {reissuing.data(), reissuing.annotations(), false, end.Add(time.Hour), caReissuing, caKept, newCA, both(oldCA, newCA)},
		"reissuing: old dropped":  {reissuing.data(), reissuing.annotations(), true, end, caStable, caRotationDone, newCA, nil},
		"adding without next.crt": {stable.data(), adding.annotations(), true, due.Add(time.Hour), caAdding, caRotationStart, oldCA, nil},
		"reissuing without previous.crt": {map[string][]byte{caCertKey: newCA, caKeyKey: adding.next.KeyPEM}, reissuing.annotations(), false, end,
			caStable, caRotationDone, newCA, nil},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := decideCA(tc.data, tc.annotations, tc.leavesCurrent, tc.now)
			if err != nil {
				t.Fatal(err)
			}
			if got.phase != tc.phase || got.reason != tc.reason {
				t.Fatalf("phase %q reason %q, want %q %q", got.phase, got.reason, tc.phase, tc.reason)
			}
			if tc.signer == nil {
				if bytes.Equal(got.signer.CertPEM, oldCA) || bytes.Equal(got.signer.CertPEM, newCA) {
					t.Error("signer is an old CA, want a new one")
				}
			} else if !bytes.Equal(got.signer.CertPEM, tc.signer) {
				t.Error("signer is not the expected CA")
			}
			bundle := tc.bundle
			switch {
			case got.next != nil: // a next CA made by this call
				bundle = both(got.signer.CertPEM, got.next.CertPEM)
			case bundle == nil:
				bundle = got.signer.CertPEM
			}
			if !bytes.Equal(got.bundle(), bundle) {
				t.Errorf("bundle holds %d certificates, not the expected ones", bytes.Count(got.bundle(), []byte("BEGIN CERTIFICATE")))
			}
			// The state survives a round trip through the Secret.
			if got.phase != caStable {
				back, err := decideCA(got.data(), got.annotations(), false, got.since)
				if err != nil || back.phase != got.phase || !bytes.Equal(back.bundle(), got.bundle()) || back.reason != caKept {
					t.Errorf("re-read at the phase's start: phase %q reason %q err %v", back.phase, back.reason, err)
				}
			}
			// A new state is looked at again later (a kept one past its
			// phase waits for the leaves' writes, which are watched).
			if got.reason != caKept && !got.nextAt().After(tc.now) {
				t.Errorf("nextAt %v is not after now %v", got.nextAt(), tc.now)
			}
		})
	}
}

// TestCABundleSecret follows <name>-ca-bundle through a CA rotation, as
// planFor plans it from each state the previous step left in <name>-ca:
// it holds ca.crt alone (no key, so the Ingress that reads it holds none),
// equal to the CA state's bundle — old + new in Adding and Reissuing, the
// new CA alone at the end — and carries the operator's label and owner.
func TestCABundleSecret(t *testing.T) {
	kv := newKV(func(k *kvv1.KVStore) { k.Spec.Replicas = ptr(int32(3)) })
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	stable := newCA(t, t0)
	due := certs.RenewAt(stable.signer.Cert)
	oldCA := stable.signer.CertPEM

	// step plans at now from <name>-ca holding st, and returns the new CA
	// state and <name>-ca-bundle's ca.crt.
	step := func(st caState, now time.Time) (caState, []byte) {
		t.Helper()
		ca := secret("kv-ca", st.data())
		ca.Annotations = st.annotations()
		p, err := planFor(kv, observe(kv).has(true, token("kv-auth"), ca).obs, testOpts, now, bytes.NewReader(make([]byte, 64)))
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(p.children, func(c child) bool { return c.key == objKey{"Secret", "kv-ca-bundle"} })
		if i < 0 {
			t.Fatal("no Secret kv-ca-bundle in the plan")
		}
		if j := slices.IndexFunc(p.children, func(c child) bool { return c.key == objKey{"Secret", "kv-ca"} }); j != i-1 {
			t.Errorf("kv-ca-bundle at %d, want right after kv-ca (%d)", i, j)
		}
		s := p.children[i].desired.(*corev1ac.SecretApplyConfiguration)
		if len(s.Data) != 1 || s.Data[caCertKey] == nil {
			t.Fatalf("kv-ca-bundle data has keys %v, want ca.crt alone", slices.Sorted(maps.Keys(s.Data)))
		}
		if s.Labels[ManagedByLabel] != FieldOwner || len(s.OwnerReferences) != 1 || *s.OwnerReferences[0].UID != kv.UID || !*s.OwnerReferences[0].Controller {
			t.Errorf("labels %v, owners %v: want the managed-by label and kv as controller", s.Labels, s.OwnerReferences)
		}
		if !bytes.Equal(s.Data[caCertKey], p.ca.bundle()) {
			t.Error("kv-ca-bundle's ca.crt is not the CA state's bundle")
		}
		return *p.ca, s.Data[caCertKey]
	}
	count := func(b []byte) int { return bytes.Count(b, []byte("BEGIN CERTIFICATE")) }

	st, b := step(stable, t0.Add(time.Hour))
	if st.phase != caStable || !bytes.Equal(b, oldCA) {
		t.Fatalf("stable: phase %q, bundle of %d CAs, want the CA alone", st.phase, count(b))
	}
	st, b = step(st, due)
	if st.phase != caAdding || count(b) != 2 || !bytes.HasPrefix(b, oldCA) || !bytes.HasSuffix(b, st.next.CertPEM) {
		t.Fatalf("adding: phase %q, bundle of %d CAs, want old + new", st.phase, count(b))
	}
	newCA := st.next.CertPEM
	st, b = step(st, due.Add(caPropagation))
	if st.phase != caReissuing || count(b) != 2 || !bytes.Contains(b, oldCA) || !bytes.Contains(b, newCA) {
		t.Fatalf("reissuing: phase %q, bundle of %d CAs, want old + new", st.phase, count(b))
	}
	// This observation holds no leaves, which counts as all current: the
	// rotation ends once the propagation delay has passed again.
	st, b = step(st, st.since.Add(caPropagation))
	if st.phase != caStable || !bytes.Equal(b, newCA) {
		t.Fatalf("done: phase %q, bundle of %d CAs, want the new CA alone", st.phase, count(b))
	}
}
