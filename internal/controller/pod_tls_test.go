package controller

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kvv1 "kvstore.dev/kvstore/api/v1"
	"kvstore.dev/kvstore/internal/certs"
)

// podTemplate is the StatefulSet's pod template as JSON, to tell whether
// a change would roll the pods.
func podTemplate(t *testing.T, kv *kvv1.KVStore) string {
	t.Helper()
	sts := &appsv1.StatefulSet{}
	if err := get(kv.Namespace, kv.Name, sts); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(sts.Spec.Template)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkPodTLS checks that <name>-pod-tls holds a peer certificate per pod
// of want, each verifying against ca.crt for its pod DNS name and naming
// the cluster, and the API certificate; it returns the Secret's data.
func checkPodTLS(kv *kvv1.KVStore, want int) (map[string][]byte, error) {
	s := &corev1.Secret{}
	if err := get(kv.Namespace, kv.Name+"-pod-tls", s); err != nil {
		return nil, err
	}
	if len(s.Data) != 2*want+3 {
		return nil, fmt.Errorf("%d entries, want %d", len(s.Data), 2*want+3)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(s.Data[caCertKey]) {
		return nil, fmt.Errorf("no ca.crt")
	}
	for i := range want {
		pod := podName(kv, int32(i))
		c, err := certs.ParseCert(s.Data[pod+".crt"])
		if err != nil || len(s.Data[pod+".key"]) == 0 {
			return nil, fmt.Errorf("%s: %v", pod, err)
		}
		dns := pod + "." + kv.Name + "-peers." + kv.Namespace + ".svc"
		if _, err := c.Verify(x509.VerifyOptions{Roots: roots, DNSName: dns, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			return nil, fmt.Errorf("%s does not verify for %s: %w", pod, dns, err)
		}
		if cl, err := certs.ClusterOf(c); err != nil || cl != kv.Name {
			return nil, fmt.Errorf("%s: cluster %q %v", pod, cl, err)
		}
	}
	api, err := certs.ParseCert(s.Data[corev1.TLSCertKey])
	if err != nil {
		return nil, err
	}
	if _, err := api.Verify(x509.VerifyOptions{Roots: roots, DNSName: apiServerName(kv)}); err != nil {
		return nil, fmt.Errorf("API certificate: %w", err)
	}
	return s.Data, nil
}

// TestPodTLS checks the pods' TLS: a peer certificate per replica in
// <name>-pod-tls, one more per pod on a scale up with the others left as
// they were and the pod template unchanged; the StatefulSet's flags,
// volumes and HTTPS probes; the Ingress's backend HTTPS annotations; and
// the https:// status endpoint without an Ingress; and plain HTTP on the
// API port (peer TLS kept) with spec.tls.pods: Disabled.
func TestPodTLS(t *testing.T) {
	ns := newNamespace(t)
	kv := create(t, sample(t, ns))
	waitChildren(t, kv)
	var first map[string][]byte
	eventually(t, "three peer certificates", func() (err error) {
		first, err = checkPodTLS(kv, 3)
		return err
	})

	sts := &appsv1.StatefulSet{}
	if err := get(ns, "demo", sts); err != nil {
		t.Fatal(err)
	}
	c := sts.Spec.Template.Spec.Containers[0]
	for _, arg := range []string{"--cluster-name=demo",
		"--peer-tls-cert=/etc/kvstore-tls/$(POD_NAME).crt", "--peer-tls-key=/etc/kvstore-tls/$(POD_NAME).key", "--peer-tls-ca=/etc/kvstore-tls/ca.crt",
		"--tls-cert-file=/etc/kvstore-tls/tls.crt", "--tls-key-file=/etc/kvstore-tls/tls.key", "--tokens-file=/etc/kvstore-tokens/tokens.yaml"} {
		if !slices.Contains(c.Args, arg) {
			t.Errorf("args %v lack %s", c.Args, arg)
		}
	}
	vols := map[string]string{}
	for _, v := range sts.Spec.Template.Spec.Volumes {
		if v.Secret != nil {
			vols[v.Name] = v.Secret.SecretName
		}
	}
	if vols["pod-tls"] != "demo-pod-tls" || vols["tokens"] != "demo-tokens" {
		t.Errorf("Secret volumes %v", vols)
	}
	mounts := map[string]bool{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name+" "+m.MountPath] = m.ReadOnly
	}
	if !mounts["pod-tls /etc/kvstore-tls"] || !mounts["tokens /etc/kvstore-tokens"] {
		t.Errorf("mounts %v, want pod-tls and tokens read-only", mounts)
	}
	for name, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if p.HTTPGet == nil || p.HTTPGet.Scheme != corev1.URISchemeHTTPS {
			t.Errorf("%s probe %+v, want HTTPS", name, p.HTTPGet)
		}
	}

	for _, name := range []string{"demo", "demo-watch"} {
		ing := &networkingv1.Ingress{}
		if err := get(ns, name, ing); err != nil {
			t.Fatal(err)
		}
		for k, v := range map[string]string{
			"backend-protocol": "HTTPS", "proxy-ssl-verify": "on", "proxy-ssl-secret": ns + "/demo-ca-bundle",
			"proxy-ssl-name": "demo." + ns + ".svc", "proxy-ssl-server-name": "on",
		} {
			if got := ing.Annotations["nginx.ingress.kubernetes.io/"+k]; got != v {
				t.Errorf("Ingress %s: %s = %q, want %q", name, k, got, v)
			}
		}
	}

	// The Secret the Ingress reads holds the CA bundle alone: no peer or
	// API key, and no tls.crt/tls.key that nginx would present to the pods.
	bundle := &corev1.Secret{}
	if err := get(ns, "demo-ca-bundle", bundle); err != nil {
		t.Fatal(err)
	}
	if len(bundle.Data) != 1 || !bytes.Equal(bundle.Data[caCertKey], first[caCertKey]) {
		t.Errorf("demo-ca-bundle holds %d keys, want ca.crt alone, equal to demo-pod-tls's", len(bundle.Data))
	}
	if bundle.Labels[ManagedByLabel] != FieldOwner || !metav1IsControlledBy(bundle, kv) {
		t.Errorf("demo-ca-bundle: labels %v, owners %v; want the managed-by label and the KVStore as controller", bundle.Labels, bundle.OwnerReferences)
	}

	template := podTemplate(t, kv)
	patch(t, kv, func(k *kvv1.KVStore) { k.Spec.Replicas = ptr(int32(5)) })
	eventually(t, "five peer certificates", func() error {
		got, err := checkPodTLS(kv, 5)
		if err != nil {
			return err
		}
		for _, k := range []string{"demo-0.crt", "demo-2.key", "tls.crt", "ca.crt"} {
			if !bytes.Equal(got[k], first[k]) {
				t.Errorf("%s changed on a scale up", k)
			}
		}
		return nil
	})
	if podTemplate(t, kv) != template {
		t.Error("the pod template changed on a scale up")
	}

	patch(t, kv, func(k *kvv1.KVStore) { k.Spec.Ingress = kvv1.IngressSpec{} })
	eventually(t, "an https:// endpoint", func() error {
		got := &kvv1.KVStore{}
		if err := get(ns, "demo", got); err != nil {
			return err
		}
		if want := "https://demo." + ns + ".svc.cluster.local:8080/"; got.Status.Endpoint != want {
			return fmt.Errorf("endpoint %q, want %q", got.Status.Endpoint, want)
		}
		return nil
	})

	// spec.tls.pods: Disabled: plain HTTP on the API port, peer TLS kept.
	patch(t, kv, func(k *kvv1.KVStore) { k.Spec.TLS.Pods = "Disabled" })
	eventually(t, "plain HTTP on the API port", func() error {
		got := &kvv1.KVStore{}
		if err := get(ns, "demo", got); err != nil {
			return err
		}
		if err := get(ns, "demo", sts); err != nil {
			return err
		}
		c := sts.Spec.Template.Spec.Containers[0]
		if slices.ContainsFunc(c.Args, func(a string) bool { return strings.HasPrefix(a, "--tls-") }) || !slices.Contains(c.Args, "--peer-tls-ca=/etc/kvstore-tls/ca.crt") {
			return fmt.Errorf("args %v, want peer TLS without API TLS", c.Args)
		}
		if c.ReadinessProbe.HTTPGet.Scheme != corev1.URISchemeHTTP {
			return fmt.Errorf("readiness probe scheme %s", c.ReadinessProbe.HTTPGet.Scheme)
		}
		if want := "http://demo." + ns + ".svc.cluster.local:8080/"; got.Status.Endpoint != want {
			return fmt.Errorf("endpoint %q, want %q", got.Status.Endpoint, want)
		}
		return nil
	})
}

// TestTokensWithoutRoll adds a token to spec.auth.tokens and changes its
// Secret: each time the rendered tokens file in <name>-tokens follows and
// the pod template stays as it was, so no pod restarts.
func TestTokensWithoutRoll(t *testing.T) {
	ns := newNamespace(t)
	kv := sample(t, ns)
	kv.Spec.Ingress = kvv1.IngressSpec{}
	create(t, kv)
	waitChildren(t, kv)
	settle(t, kv)
	template := podTemplate(t, kv)
	appSecret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "app-token", Namespace: ns}, Data: map[string][]byte{"token": []byte("first-token-0123456789")}}
	if err := k8s.Create(ctx, appSecret); err != nil {
		t.Fatal(err)
	}
	patch(t, kv, func(k *kvv1.KVStore) {
		k.Spec.Auth.Tokens = []kvv1.TokenSpec{{Name: "app", Role: "readwrite", Prefixes: []string{"app/"}, SecretRef: kvv1.SecretKeyRef{Name: "app-token", Key: "token"}}}
	})
	file := func() (string, error) {
		s := &corev1.Secret{}
		if err := get(ns, "demo-tokens", s); err != nil {
			return "", err
		}
		return string(s.Data[tokensFile]), nil
	}
	digest := func(tok string) string {
		f, err := renderTokens(&kvv1.KVStore{Spec: kvv1.KVStoreSpec{Auth: kvv1.AuthSpec{Tokens: []kvv1.TokenSpec{{Name: "x", Role: "readonly", SecretRef: kvv1.SecretKeyRef{Name: "s", Key: "k"}}}}}},
			func(string) *corev1.Secret { return &corev1.Secret{Data: map[string][]byte{"k": []byte(tok)}} })
		if err != nil {
			t.Fatal(err)
		}
		_, after, _ := strings.Cut(f, "sha256: ")
		return strings.Fields(after)[0]
	}
	eventually(t, "the token in demo-tokens", func() error {
		f, err := file()
		if err != nil {
			return err
		}
		if !strings.Contains(f, "name: app") || !strings.Contains(f, "app/") || !strings.Contains(f, digest("first-token-0123456789")) {
			return fmt.Errorf("tokens file:\n%s", f)
		}
		return nil
	})
	appSecret.Data["token"] = []byte("second-token-0123456789")
	if err := k8s.Update(ctx, appSecret); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the changed token in demo-tokens", func() error {
		f, err := file()
		if err != nil {
			return err
		}
		if !strings.Contains(f, digest("second-token-0123456789")) {
			return fmt.Errorf("tokens file:\n%s", f)
		}
		return nil
	})
	settle(t, kv)
	if podTemplate(t, kv) != template {
		t.Error("the pod template changed with the tokens: the pods would roll")
	}
}

// TestCARotationPhases drives the CA of a settled KVStore through its
// rotation with the reconciler's clock (the manager's reconciler, on the
// real clock, runs too and must not undo a phase): Adding (both CAs in
// every ca.crt, <name>-ca-bundle's too, leaves still from the old CA), Reissuing (every leaf from the new CA, the old CA
// still trusted) and back to Stable with the old CA dropped, the phase
// recorded on <name>-ca throughout and the pod template never changed.
func TestCARotationPhases(t *testing.T) {
	ns := newNamespace(t)
	kv := sample(t, ns)
	kv.Spec.Ingress = kvv1.IngressSpec{}
	create(t, kv)
	waitChildren(t, kv)
	settle(t, kv)
	template := podTemplate(t, kv)
	read := func(name string) *corev1.Secret {
		t.Helper()
		s := &corev1.Secret{}
		if err := get(ns, name, s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	oldCA := read("demo-ca")
	count := func(pem []byte) int { return bytes.Count(pem, []byte("BEGIN CERTIFICATE")) }
	phase := func() string { return read("demo-ca").Annotations[CARotationAnnotation] }
	// reconcile at now, until the manager's own reconciles (at the real
	// time) and the cache agree with what this one wrote.
	at := func(now time.Time, want string) {
		t.Helper()
		eventually(t, "phase "+want, func() error {
			reconcileOnce(t, kv, now)
			if got := phase(); got != want {
				return fmt.Errorf("phase %q", got)
			}
			return nil
		})
	}

	due := certs.RenewAt(mustCert(t, oldCA.Data[caCertKey]))
	at(due, string(caAdding))
	pod, edge := read("demo-pod-tls"), read("demo-tls")
	if count(pod.Data[caCertKey]) != 2 || count(edge.Data[caCertKey]) != 2 {
		t.Errorf("bundles in Adding hold %d and %d CAs, want 2", count(pod.Data[caCertKey]), count(edge.Data[caCertKey]))
	}
	if b := read("demo-ca-bundle"); len(b.Data) != 1 || !bytes.Equal(b.Data[caCertKey], pod.Data[caCertKey]) {
		t.Errorf("demo-ca-bundle in Adding: %d keys, %d CAs; want ca.crt alone, old + new", len(b.Data), count(b.Data[caCertKey]))
	}
	// Six years on the leaves are due anyway, but the old CA still signs.
	if !signedBy(mustCert(t, oldCA.Data[caCertKey]), pod.Data["demo-0.crt"], pod.Data[corev1.TLSCertKey], edge.Data[corev1.TLSCertKey]) {
		t.Error("a leaf is from the new CA before the new CA reached the pods")
	}

	at(due.Add(caPropagation), string(caReissuing))
	newCA := read("demo-ca")
	if bytes.Equal(newCA.Data[caCertKey], oldCA.Data[caCertKey]) || !bytes.Equal(newCA.Data[caPreviousCertKey], oldCA.Data[caCertKey]) {
		t.Fatal("in Reissuing the new CA does not sign, or the old one is not kept as previous.crt")
	}
	signer := mustCert(t, newCA.Data[caCertKey])
	eventually(t, "leaves from the new CA", func() error {
		pod, edge := read("demo-pod-tls"), read("demo-tls")
		for k, v := range pod.Data {
			if strings.HasSuffix(k, ".crt") && k != caCertKey && !signedBy(signer, v) {
				return fmt.Errorf("%s is not from the new CA", k)
			}
		}
		if !signedBy(signer, edge.Data[corev1.TLSCertKey]) || count(pod.Data[caCertKey]) != 2 {
			return fmt.Errorf("edge certificate from the old CA, or the bundle lost the old CA")
		}
		return nil
	})

	// Too early: the old CA stays trusted.
	since, err := time.Parse(time.RFC3339, newCA.Annotations[CARotationSinceAnnotation])
	if err != nil {
		t.Fatal(err)
	}
	at(since.Add(caPropagation-time.Second), string(caReissuing))
	at(since.Add(caPropagation), "")
	done := read("demo-ca")
	if _, ok := done.Data[caPreviousCertKey]; ok || !bytes.Equal(done.Data[caCertKey], newCA.Data[caCertKey]) {
		t.Error("after the rotation previous.crt is still there, or the signer changed again")
	}
	eventually(t, "bundles with the new CA alone", func() error {
		for _, name := range []string{"demo-pod-tls", "demo-tls", "demo-ca-bundle"} {
			if b := read(name).Data[caCertKey]; !bytes.Equal(b, newCA.Data[caCertKey]) {
				return fmt.Errorf("%s ca.crt holds %d CAs", name, count(b))
			}
		}
		return nil
	})
	if podTemplate(t, kv) != template {
		t.Error("the pod template changed during the CA rotation")
	}
}
