package controller

import (
	"bytes"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kvv1 "kvstore.dev/kvstore/api/v1"
	"kvstore.dev/kvstore/internal/certs"
)

// TestDecidePodTLS checks which entries of <name>-pod-tls are (re-)issued:
// none when all are valid, only the new pods' on a scale up, all of them
// past their renewal time or after the CA changed, and a certificate
// naming another cluster is replaced. The result is always a full set of
// valid certificates for the pods.
func TestDecidePodTLS(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	kv := &kvv1.KVStore{ObjectMeta: metav1.ObjectMeta{Name: "kv", Namespace: "ns"}}
	ca := newCA(t, now)
	three := podLeaves(kv, testOpts, 3)
	first, err := decidePodTLS(ca, nil, "kv", three, now)
	if err != nil {
		t.Fatal(err)
	}
	all := []string{"kv-0.crt", "kv-1.crt", "kv-2.crt", "tls.crt"}
	if !slices.Equal(first.issued, all) {
		t.Fatalf("first: issued %v", first.issued)
	}
	other, _ := decidePodTLS(ca, nil, "elsewhere", three, now)
	foreign := maps.Clone(first.data)
	foreign["kv-1.crt"], foreign["kv-1.key"] = other.data["kv-1.crt"], other.data["kv-1.key"]
	rotated := ca
	rotated.signer = newCA(t, now).signer

	cases := map[string]struct {
		ca     caState
		old    map[string][]byte
		count  int32
		now    time.Time
		issued []string
	}{
		"valid: kept":               {ca, first.data, 3, now.Add(time.Hour), nil},
		"scale up: new pods only":   {ca, first.data, 5, now.Add(time.Hour), []string{"kv-3.crt", "kv-4.crt"}},
		"scale down: kept":          {ca, first.data, 1, now.Add(time.Hour), nil},
		"past two thirds: renewed":  {ca, first.data, 3, now.Add(245 * 24 * time.Hour), all},
		"another cluster's peer":    {ca, foreign, 3, now, []string{"kv-1.crt"}},
		"new signer: all re-issued": {rotated, first.data, 3, now, all},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := decidePodTLS(tc.ca, tc.old, "kv", podLeaves(kv, testOpts, tc.count), tc.now)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.issued, tc.issued) {
				t.Errorf("issued %v, want %v", got.issued, tc.issued)
			}
			if !bytes.Equal(got.data[caCertKey], tc.ca.bundle()) {
				t.Error("ca.crt is not the CA bundle")
			}
			if want := 2*int(tc.count) + 3; len(got.data) != want {
				t.Errorf("%d entries, want %d (ca.crt, tls.crt/key, a pair per pod)", len(got.data), want)
			}
			for _, l := range podLeaves(kv, testOpts, tc.count) {
				cert, ok := leafValid(tc.ca.signer.Cert, got.data[l.certKey], got.data[l.keyKey], l, "kv", tc.now)
				if !ok {
					t.Fatalf("%s is not valid for %v at %v", l.certKey, l.hosts, tc.now)
				}
				if l.node != "" && cert.Subject.CommonName != l.node {
					t.Errorf("%s: common name %q", l.certKey, cert.Subject.CommonName)
				}
			}
			if !got.renewAt.After(tc.now) {
				t.Errorf("renewAt %v is not after %v", got.renewAt, tc.now)
			}
		})
	}
}

// TestPodLeaves pins the names the pods' certificates carry.
func TestPodLeaves(t *testing.T) {
	kv := &kvv1.KVStore{ObjectMeta: metav1.ObjectMeta{Name: "kv", Namespace: "ns"}}
	leaves := podLeaves(kv, BuildOptions{ClusterDomain: "corp.local"}, 2)
	if len(leaves) != 3 || leaves[0].certKey != corev1.TLSCertKey || leaves[0].node != "" {
		t.Fatalf("leaves %+v", leaves)
	}
	api := strings.Join(leaves[0].hosts, " ")
	for _, want := range []string{"kv", "kv.ns.svc", "kv.ns.svc.corp.local", "*.kv-peers.ns.svc", "localhost", "127.0.0.1"} {
		if !slices.Contains(leaves[0].hosts, want) {
			t.Errorf("API hosts %q lack %q", api, want)
		}
	}
	if l := leaves[2]; l.certKey != "kv-1.crt" || l.keyKey != "kv-1.key" || l.node != "kv-1" ||
		!slices.Equal(l.hosts, []string{"kv-1.kv-peers.ns.svc", "kv-1.kv-peers.ns.svc.corp.local"}) {
		t.Errorf("peer leaf %+v", l)
	}
	if _, err := certs.ClusterURI(clusterName(kv)); err != nil {
		t.Error(err)
	}
}

// TestPodAPITLSSwitch checks what spec.tls.pods changes in the builders:
// the API TLS flags, the probes' scheme, the Ingress's backend
// annotations and the endpoint's scheme; the peer TLS flags stay.
func TestPodAPITLSSwitch(t *testing.T) {
	cases := map[string]struct {
		pods string
		tls  bool
	}{
		"default":  {"", true},
		"Enabled":  {"Enabled", true},
		"Disabled": {"Disabled", false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			kv := newKV(func(k *kvv1.KVStore) { k.Spec.TLS.Pods = tc.pods })
			c := desiredStatefulSet(kv, testOpts, "hash", 3).Spec.Template.Spec.Containers[0]
			if got := slices.Contains(c.Args, "--tls-cert-file=/etc/kvstore-tls/tls.crt"); got != tc.tls {
				t.Errorf("API TLS flag = %v, want %v", got, tc.tls)
			}
			if !slices.Contains(c.Args, "--peer-tls-cert=/etc/kvstore-tls/$(POD_NAME).crt") || !slices.Contains(c.Args, "--cluster-name=kv") {
				t.Errorf("args %v lack the peer TLS flags", c.Args)
			}
			scheme := corev1.URISchemeHTTP
			if tc.tls {
				scheme = corev1.URISchemeHTTPS
			}
			if *c.ReadinessProbe.HTTPGet.Scheme != scheme || *c.StartupProbe.HTTPGet.Scheme != scheme {
				t.Errorf("probe scheme %s, want %s", *c.ReadinessProbe.HTTPGet.Scheme, scheme)
			}
			a := ingressAnnotations(kv)
			if got := a["nginx.ingress.kubernetes.io/backend-protocol"] == "HTTPS" && a["nginx.ingress.kubernetes.io/proxy-ssl-secret"] == "ns/kv-ca-bundle" &&
				a["nginx.ingress.kubernetes.io/proxy-ssl-name"] == "kv.ns.svc" && a["nginx.ingress.kubernetes.io/proxy-ssl-verify"] == "on"; got != tc.tls {
				t.Errorf("backend HTTPS annotations = %v, want %v: %v", got, tc.tls, a)
			}
			if got := strings.HasPrefix(endpoint(kv, testOpts), "https://"); got != tc.tls {
				t.Errorf("endpoint %s", endpoint(kv, testOpts))
			}
		})
	}
}
