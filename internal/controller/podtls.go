package controller

import (
	"crypto/x509"
	"fmt"
	"net"
	"slices"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	kvv1 "kvstore.dev/kvstore/api/v1"
	"kvstore.dev/kvstore/internal/certs"
)

// The pods' TLS material is one Secret, <name>-pod-tls, mounted read-only
// at podTLSDir in every pod:
//
//	ca.crt          the CA bundle (caState.bundle): peers and API clients trust it
//	tls.crt/tls.key the API server certificate, shared by the pods (client
//	                Service names, *.<name>-peers names, localhost)
//	<pod>.crt/.key  pod <pod>'s peer certificate: its pod DNS names and the
//	                cluster URI SAN kvstore://cluster/<KVStore name>
//
// A pod picks its own peer certificate by name ($(POD_NAME).crt). Entries
// are issued and renewed one by one, so a scale up adds certificates
// without touching the others, and the pod template never changes: the
// servers re-read the files when the kubelet updates the volume.

// podLeaf is one certificate of <name>-pod-tls to have: its keys in the
// Secret, the hosts it names and, for a peer certificate, the cluster.
type podLeaf struct {
	certKey, keyKey string
	node            string // peer: the pod name; "" for the API certificate
	hosts           []string
}

// podTLS is <name>-pod-tls as decidePodTLS decided it.
type podTLS struct {
	data    map[string][]byte
	renewAt time.Time // the earliest renewal time of its certificates
	issued  []string  // certificate keys (re-)issued, sorted; none when kept
}

// podLeaves are the certificates <name>-pod-tls holds for count pods.
func podLeaves(kv *kvv1.KVStore, o BuildOptions, count int32) []podLeaf {
	n := namesFor(kv)
	leaves := []podLeaf{{certKey: corev1.TLSCertKey, keyKey: corev1.TLSPrivateKeyKey, hosts: apiHosts(kv, o)}}
	for i := int32(0); i < count; i++ {
		pod := podName(kv, i)
		host := pod + "." + n.peers + "." + n.namespace + ".svc"
		leaves = append(leaves, podLeaf{certKey: pod + ".crt", keyKey: pod + ".key", node: pod,
			hosts: []string{host, host + "." + clusterDomain(o)}})
	}
	return leaves
}

// apiHosts are the names the pods' API certificate is issued for: the
// client Service's and the headless Service's in-cluster names (so a pod
// is reachable as itself too) and loopback, for clients inside the pod.
func apiHosts(kv *kvv1.KVStore, o BuildOptions) []string {
	n := namesFor(kv)
	hosts := []string{n.kv, "localhost", "127.0.0.1"}
	for _, svc := range []string{n.kv, "*." + n.peers} {
		hosts = append(hosts, svc+"."+n.namespace, svc+"."+n.namespace+".svc", svc+"."+n.namespace+".svc."+clusterDomain(o))
	}
	sort.Strings(hosts)
	return hosts
}

// podAPITLS reports whether the pods' API port serves HTTPS
// (spec.tls.pods, Enabled by default).
func podAPITLS(kv *kvv1.KVStore) bool { return kv.Spec.TLS.Pods != "Disabled" }

// apiScheme is the scheme of the pods' API port.
func apiScheme(kv *kvv1.KVStore) string {
	if podAPITLS(kv) {
		return "https"
	}
	return "http"
}

// apiServerName is the name the operator and the Ingress verify the pods'
// API certificate against: the client Service's.
func apiServerName(kv *kvv1.KVStore) string { return kv.Name + "." + kv.Namespace + ".svc" }

// decidePodTLS returns the data <name>-pod-tls should have at now, given
// its current data (nil when absent): each of leaves kept while it is
// signed by ca's signer, names its hosts (and cluster), and is short of two
// thirds of its lifetime; otherwise issued anew. Entries of pods not in
// leaves are dropped. ca.crt is ca's bundle. New keys come from
// crypto/rand.
func decidePodTLS(ca caState, old map[string][]byte, cluster string, leaves []podLeaf, now time.Time) (podTLS, error) {
	out := podTLS{data: map[string][]byte{caCertKey: ca.bundle()}}
	for _, l := range leaves {
		cert, ok := leafValid(ca.signer.Cert, old[l.certKey], old[l.keyKey], l, cluster, now)
		if !ok {
			var pair certs.Pair
			var err error
			if l.node != "" {
				pair, err = ca.signer.IssuePeer(cluster, l.node, l.hosts, certs.PeerValidity, now)
			} else {
				pair, err = ca.signer.IssueServer(l.hosts, certs.ServerValidity, now)
			}
			if err != nil {
				return podTLS{}, fmt.Errorf("issue %s: %w", l.certKey, err)
			}
			if cert, err = certs.ParseCert(pair.CertPEM); err != nil {
				return podTLS{}, err
			}
			out.data[l.certKey], out.data[l.keyKey] = pair.CertPEM, pair.KeyPEM
			out.issued = append(out.issued, l.certKey)
		} else {
			out.data[l.certKey], out.data[l.keyKey] = old[l.certKey], old[l.keyKey]
		}
		if r := certs.RenewAt(cert); out.renewAt.IsZero() || r.Before(out.renewAt) {
			out.renewAt = r
		}
	}
	sort.Strings(out.issued)
	return out, nil
}

// leafValid parses certPEM and reports whether it may be kept for l: a
// key is there, ca signed it, it is short of its renewal time, it names
// every host of l and, for a peer certificate, the cluster.
func leafValid(ca *x509.Certificate, certPEM, keyPEM []byte, l podLeaf, cluster string, now time.Time) (*x509.Certificate, bool) {
	cert, err := certs.ParseCert(certPEM)
	if err != nil || len(keyPEM) == 0 || cert.CheckSignatureFrom(ca) != nil || !now.Before(certs.RenewAt(cert)) {
		return nil, false
	}
	for _, h := range l.hosts {
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
				return nil, false
			}
		} else if !slices.Contains(cert.DNSNames, h) {
			return nil, false
		}
	}
	if l.node != "" {
		if c, err := certs.ClusterOf(cert); err != nil || c != cluster {
			return nil, false
		}
	}
	return cert, true
}

// clusterName is the peer cluster name of kv: its name, which is a DNS
// label like every cluster name (certs.ClusterNamePattern). KVStores of the
// same name in two namespaces have different CAs, so their pods still
// refuse each other.
func clusterName(kv *kvv1.KVStore) string { return kv.Name }

// desiredPodTLSSecret is <name>-pod-tls with data.
func desiredPodTLSSecret(kv *kvv1.KVStore, data map[string][]byte) *corev1ac.SecretApplyConfiguration {
	n := namesFor(kv)
	return corev1ac.Secret(n.podTLS, n.namespace).
		WithLabels(labels(kv, "pod-tls")).
		WithOwnerReferences(ownerRef(kv)).
		WithType(corev1.SecretTypeOpaque).
		WithData(data)
}
