package controller

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kvv1 "kvstore.dev/kvstore/api/v1"
	"kvstore.dev/kvstore/internal/certs"
)

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustCert(t *testing.T, pem []byte) *x509.Certificate {
	t.Helper()
	c, err := certs.ParseCert(pem)
	if err != nil {
		t.Fatalf("parse certificate: %v", err)
	}
	return c
}

// reconcileOnce runs a reconcile of kv outside the manager, with its own
// clock and a client that counts writes.
func reconcileOnce(t *testing.T, kv *kvv1.KVStore, now time.Time) (*countingClient, *countingRecorder) {
	t.Helper()
	cc := &countingClient{Client: mgrClient}
	rec := &countingRecorder{}
	r := &Reconciler{Client: cc, Recorder: rec, Options: testOpts, Now: func() time.Time { return now }}
	// The manager reconciles the same object: a conflict on the status
	// write is retried, as the manager would.
	for {
		_, err := r.Reconcile(ctx, reconcile.Request{NamespacedName: key(kv.Namespace, kv.Name)})
		if err == nil {
			return cc, rec
		}
		if !apierrors.IsConflict(errors.Unwrap(err)) && !strings.Contains(err.Error(), "the object has been modified") {
			t.Fatalf("reconcile: %v", err)
		}
	}
}

// settle waits until a reconcile of kv makes no writes and records no
// events, and fails when that does not happen: an unchanged KVStore must
// be quiet.
func settle(t *testing.T, kv *kvv1.KVStore) {
	t.Helper()
	eventually(t, "a reconcile with no writes", func() error {
		cc, rec := reconcileOnce(t, kv, time.Now())
		if cc.writes.Load() != 0 || rec.n.Load() != 0 {
			return fmt.Errorf("%d writes %v, %d events", cc.writes.Load(), cc.log, rec.n.Load())
		}
		return nil
	})
}

func TestSteadyStateMakesNoWrites(t *testing.T) {
	ns := newNamespace(t)
	kv := create(t, sample(t, ns))
	waitChildren(t, kv)
	settle(t, kv)
	// Several in a row, on the cache the manager keeps up to date.
	for i := range 3 {
		cc, rec := reconcileOnce(t, kv, time.Now())
		if cc.writes.Load() != 0 || rec.n.Load() != 0 {
			t.Fatalf("reconcile %d of an unchanged KVStore: %d writes %v, %d events", i, cc.writes.Load(), cc.log, rec.n.Load())
		}
	}
}

func TestDriftIsRepaired(t *testing.T) {
	ns := newNamespace(t)
	kv := create(t, sample(t, ns))
	waitChildren(t, kv)

	// Someone edits the client Service's port and the StatefulSet's image
	// by hand, and deletes the ConfigMap and the PDB.
	svc := &corev1.Service{}
	if err := get(ns, "demo", svc); err != nil {
		t.Fatal(err)
	}
	svc.Spec.Ports[0].TargetPort = intstr.FromInt32(9999)
	svc.Labels["team"] = "storage" // a field the operator does not set: left alone
	if err := k8s.Update(ctx, svc, client.FieldOwner("kubectl-edit")); err != nil {
		t.Fatal(err)
	}
	sts := &appsv1.StatefulSet{}
	if err := get(ns, "demo", sts); err != nil {
		t.Fatal(err)
	}
	sts.Spec.Template.Spec.Containers[0].Image = "evil/image:1"
	if err := k8s.Update(ctx, sts, client.FieldOwner("kubectl-edit")); err != nil {
		t.Fatal(err)
	}
	for _, o := range []client.Object{
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "demo-config", Namespace: ns}},
		&policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "demo", Namespace: ns}},
	} {
		if err := k8s.Delete(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "Service port restored", func() error {
		if err := get(ns, "demo", svc); err != nil {
			return err
		}
		if svc.Spec.Ports[0].TargetPort.String() != "http" {
			return fmt.Errorf("targetPort %s", svc.Spec.Ports[0].TargetPort.String())
		}
		return nil
	})
	if svc.Labels["team"] != "storage" {
		t.Errorf("the operator removed a label it does not manage: %v", svc.Labels)
	}
	eventually(t, "StatefulSet image restored", func() error {
		if err := get(ns, "demo", sts); err != nil {
			return err
		}
		if img := sts.Spec.Template.Spec.Containers[0].Image; img != testOpts.DefaultImage {
			return fmt.Errorf("image %s", img)
		}
		return nil
	})
	eventually(t, "ConfigMap re-created", func() error { return get(ns, "demo-config", &corev1.ConfigMap{}) })
	eventually(t, "PDB re-created", func() error { return get(ns, "demo", &policyv1.PodDisruptionBudget{}) })
	settle(t, kv)
}

func TestGeneratedTokenIsKept(t *testing.T) {
	ns := newNamespace(t)
	kv := create(t, sample(t, ns))
	waitChildren(t, kv)
	auth := &corev1.Secret{}
	if err := get(ns, "demo-auth", auth); err != nil {
		t.Fatal(err)
	}
	token := auth.Data[AuthTokenKey]
	patch(t, kv, func(kv *kvv1.KVStore) { kv.Spec.Config.LogLevel = "warn" })
	settle(t, kv)
	if err := get(ns, "demo-auth", auth); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(auth.Data[AuthTokenKey], token) {
		t.Error("the generated admin token changed behind the user's back")
	}
}

func TestUserSecretsAreUsedAndUntouched(t *testing.T) {
	ns := newNamespace(t)
	ca, err := certs.NewCA("user CA", time.Hour*24*30, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.IssueServer([]string{"kv.example.com"}, 24*time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	userTLS := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "my-cert", Namespace: ns},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{"tls.crt": pair.CertPEM, "tls.key": pair.KeyPEM},
	}
	if err := k8s.Create(ctx, userTLS); err != nil {
		t.Fatal(err)
	}
	kv := sample(t, ns)
	kv.Spec.TLS.SecretName = "my-cert"
	kv.Spec.Auth.SecretName = "my-token"
	create(t, kv)

	// The token Secret does not exist yet: Degraded says so.
	waitCondition(t, kv, kvv1.ConditionDegraded, metav1.ConditionTrue, "AuthSecretNotFound")
	// Staying degraded is quiet too: no event per reconcile. (The
	// reconciler reads the manager's cache, which may lag the direct read
	// above by a moment.)
	eventually(t, "the cache sees the Degraded condition", func() error {
		cached := &kvv1.KVStore{}
		if err := mgrClient.Get(ctx, key(ns, "demo"), cached); err != nil {
			return err
		}
		if c := meta.FindStatusCondition(cached.Status.Conditions, kvv1.ConditionDegraded); c == nil || c.Reason != "AuthSecretNotFound" {
			return fmt.Errorf("cached condition %+v", c)
		}
		return nil
	})
	if cc, rec := reconcileOnce(t, kv, time.Now()); rec.n.Load() != 0 || cc.writes.Load() != 0 {
		t.Errorf("a reconcile of a KVStore that stays degraded: %d writes %v, %d events", cc.writes.Load(), cc.log, rec.n.Load())
	}
	userAuth := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "my-token", Namespace: ns},
		Data:       map[string][]byte{AuthTokenKey: []byte("a-user-chosen-token-0123456789")},
	}
	if err := k8s.Create(ctx, userAuth); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, kv, kvv1.ConditionDegraded, metav1.ConditionFalse, "AsExpected")

	sts := &appsv1.StatefulSet{}
	eventually(t, "StatefulSet reads the user's token", func() error {
		if err := get(ns, "demo", sts); err != nil {
			return err
		}
		if ref := envSecret(sts.Spec.Template.Spec.Containers[0], "KVSTORE_ADMIN_TOKEN"); ref != "my-token" {
			return fmt.Errorf("token from %s", ref)
		}
		return nil
	})
	eventually(t, "Ingress serves the user's certificate", func() error {
		ing := &networkingv1.Ingress{}
		if err := get(ns, "demo", ing); err != nil {
			return err
		}
		if ing.Spec.TLS[0].SecretName != "my-cert" {
			return fmt.Errorf("tls secret %s", ing.Spec.TLS[0].SecretName)
		}
		return nil
	})
	settle(t, kv)
	for _, s := range []*corev1.Secret{userTLS, userAuth} {
		got := &corev1.Secret{}
		if err := get(ns, s.Name, got); err != nil {
			t.Fatal(err)
		}
		if got.ResourceVersion != s.ResourceVersion || len(got.OwnerReferences) != 0 {
			t.Errorf("the user's Secret %s was modified: resourceVersion %s -> %s, owners %v", s.Name, s.ResourceVersion, got.ResourceVersion, got.OwnerReferences)
		}
		for _, mf := range got.ManagedFields {
			if mf.Manager == FieldOwner {
				t.Errorf("the operator manages fields of the user's Secret %s", s.Name)
			}
		}
	}
	// The CA is still the operator's: it signs the pods' certificates.
	for _, name := range []string{"demo-tls", "demo-auth"} {
		if err := get(ns, name, &corev1.Secret{}); err == nil {
			t.Errorf("Secret %s was generated although the user brought their own", name)
		}
	}

	// Rotating the user's token rolls the pods (the config hash changes).
	hash := sts.Spec.Template.Annotations[ConfigHashAnnotation]
	userAuth.Data[AuthTokenKey] = []byte("a-rotated-token-9876543210")
	if err := k8s.Update(ctx, userAuth); err != nil {
		t.Fatal(err)
	}
	eventually(t, "pods roll on token change", func() error {
		if err := get(ns, "demo", sts); err != nil {
			return err
		}
		if sts.Spec.Template.Annotations[ConfigHashAnnotation] == hash {
			return fmt.Errorf("hash unchanged")
		}
		return nil
	})

	// A broken user certificate is reported, and still not touched.
	userTLS.Data["tls.crt"] = []byte("not a certificate")
	if err := get(ns, "my-cert", &corev1.Secret{}); err != nil {
		t.Fatal(err)
	}
	cur := &corev1.Secret{}
	_ = get(ns, "my-cert", cur)
	cur.Data["tls.crt"] = []byte("not a certificate")
	if err := k8s.Update(ctx, cur); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, kv, kvv1.ConditionDegraded, metav1.ConditionTrue, "TLSSecretInvalid")
}

func waitCondition(t *testing.T, kv *kvv1.KVStore, typ string, status metav1.ConditionStatus, reason string) {
	t.Helper()
	eventually(t, fmt.Sprintf("%s=%s (%s)", typ, status, reason), func() error {
		got := &kvv1.KVStore{}
		if err := get(kv.Namespace, kv.Name, got); err != nil {
			return err
		}
		c := meta.FindStatusCondition(got.Status.Conditions, typ)
		if c == nil || c.Status != status || c.Reason != reason {
			return fmt.Errorf("condition %+v", c)
		}
		return nil
	})
}

func TestCertificateIsReissuedBeforeExpiry(t *testing.T) {
	ns := newNamespace(t)
	kv := create(t, sample(t, ns))
	waitChildren(t, kv)
	setSTSStatus(t, kv, 3, 3, 3) // ready, so months later nothing else is due
	waitCondition(t, kv, kvv1.ConditionProgressing, metav1.ConditionFalse, "RolloutComplete")
	settle(t, kv)
	before := &corev1.Secret{}
	if err := get(ns, "demo-tls", before); err != nil {
		t.Fatal(err)
	}
	cert := mustCert(t, before.Data["tls.crt"])

	// Just short of two thirds of its lifetime: kept.
	renewAt := certs.RenewAt(cert)
	if cc, _ := reconcileOnce(t, kv, renewAt.Add(-time.Minute)); cc.writes.Load() != 0 {
		t.Fatalf("reconcile before the renewal time wrote %v", cc.log)
	}
	// Past it: re-issued by the same CA, with an event.
	_, rec := reconcileOnce(t, kv, renewAt.Add(time.Minute))
	after := &corev1.Secret{}
	if err := get(ns, "demo-tls", after); err != nil {
		t.Fatal(err)
	}
	newCert := mustCert(t, after.Data["tls.crt"])
	if newCert.SerialNumber.Cmp(cert.SerialNumber) == 0 {
		t.Fatal("certificate not re-issued past two thirds of its lifetime")
	}
	if !newCert.NotAfter.After(cert.NotAfter) {
		t.Errorf("new certificate expires %v, old %v", newCert.NotAfter, cert.NotAfter)
	}
	if !bytes.Equal(after.Data["ca.crt"], before.Data["ca.crt"]) || newCert.CheckSignatureFrom(mustCert(t, before.Data["ca.crt"])) != nil {
		t.Error("the CA changed: clients trusting ca.crt would break")
	}
	if rec.n.Load() == 0 {
		t.Error("no event recorded for the renewal")
	}
}

func TestStatusFollowsStatefulSet(t *testing.T) {
	ns := newNamespace(t)
	kv := create(t, sample(t, ns)) // 3 replicas: quorum 2
	waitChildren(t, kv)
	waitCondition(t, kv, kvv1.ConditionAvailable, metav1.ConditionFalse, "NoReadyReplicas")
	waitCondition(t, kv, kvv1.ConditionProgressing, metav1.ConditionTrue, "Creating")

	setSTSStatus := func(replicas, ready, updated int32) { t.Helper(); setSTSStatus(t, kv, replicas, ready, updated) }
	setSTSStatus(3, 1, 3)
	waitCondition(t, kv, kvv1.ConditionAvailable, metav1.ConditionFalse, "NotEnoughReadyReplicas")
	waitCondition(t, kv, kvv1.ConditionProgressing, metav1.ConditionTrue, "WaitingForReadyReplicas")
	setSTSStatus(3, 2, 3)
	waitCondition(t, kv, kvv1.ConditionAvailable, metav1.ConditionTrue, "QuorumReady")
	setSTSStatus(3, 3, 3)
	waitCondition(t, kv, kvv1.ConditionProgressing, metav1.ConditionFalse, "RolloutComplete")
	waitCondition(t, kv, kvv1.ConditionDegraded, metav1.ConditionFalse, "AsExpected")
	got := &kvv1.KVStore{}
	if err := get(ns, "demo", got); err != nil || got.Status.ReadyReplicas != 3 || got.Status.Replicas != 3 {
		t.Errorf("status %+v (%v)", got.Status, err)
	}
	settle(t, kv)

	// Pods that stay unready past the progress deadline: Degraded.
	setSTSStatus(3, 1, 3)
	waitCondition(t, kv, kvv1.ConditionProgressing, metav1.ConditionTrue, "WaitingForReadyReplicas")
	reconcileOnce(t, kv, time.Now().Add(ProgressDeadline+time.Minute))
	waitConditionNow(t, kv, kvv1.ConditionDegraded, metav1.ConditionTrue, "ProgressDeadlineExceeded")
}

// waitConditionNow checks a condition without waiting: the reconcile that
// set it just ran (a later one by the manager, with the real clock, would
// put it back).
func waitConditionNow(t *testing.T, kv *kvv1.KVStore, typ string, status metav1.ConditionStatus, reason string) {
	t.Helper()
	got := &kvv1.KVStore{}
	if err := k8s.Get(ctx, key(kv.Namespace, kv.Name), got); err != nil {
		t.Fatal(err)
	}
	if c := meta.FindStatusCondition(got.Status.Conditions, typ); c == nil || c.Status != status || c.Reason != reason {
		t.Errorf("%s: %+v, want %s (%s)", typ, c, status, reason)
	}
}

func TestCertManagerIssuer(t *testing.T) {
	ns := newNamespace(t)
	kv := sample(t, ns)
	kv.Spec.TLS.IssuerRef = &kvv1.IssuerReference{Name: "letsencrypt", Kind: "ClusterIssuer"}
	create(t, kv)
	waitCondition(t, kv, kvv1.ConditionDegraded, metav1.ConditionTrue, "CertManagerNotInstalled")

	// cert-manager gets installed: the operator asks it for the certificate.
	if _, err := envtest.InstallCRDs(restConfig, envtest.CRDInstallOptions{Paths: []string{"testdata/certmanager"}}); err != nil {
		t.Fatal(err)
	}
	crt := &unstructured.Unstructured{}
	crt.SetGroupVersionKind(certificateGVK)
	eventually(t, "Certificate created", func() error {
		reconcileOnce(t, kv, time.Now())
		if err := get(ns, "demo", crt); err != nil {
			return err
		}
		spec := crt.Object["spec"].(map[string]any)
		if spec["secretName"] != "demo-tls" || spec["issuerRef"].(map[string]any)["kind"] != "ClusterIssuer" {
			return fmt.Errorf("spec %v", spec)
		}
		return nil
	})
	// cert-manager writes demo-tls; the operator's CA signs the pods'
	// certificates only.
	if err := get(ns, "demo-tls", &corev1.Secret{}); err == nil {
		t.Error("the operator wrote demo-tls although cert-manager issues it")
	}
	if _, err := checkPodTLS(kv, 3); err != nil {
		t.Errorf("pod certificates: %v", err)
	}
}

// setSTSStatus plays the StatefulSet controller's part, which envtest does
// not run: it writes the status of kv's StatefulSet.
func setSTSStatus(t *testing.T, kv *kvv1.KVStore, replicas, ready, updated int32) {
	t.Helper()
	eventually(t, "update StatefulSet status", func() error {
		sts := &appsv1.StatefulSet{}
		if err := get(kv.Namespace, kv.Name, sts); err != nil {
			return err
		}
		sts.Status = appsv1.StatefulSetStatus{
			ObservedGeneration: sts.Generation, Replicas: replicas, ReadyReplicas: ready, AvailableReplicas: ready,
			UpdatedReplicas: updated, CurrentReplicas: updated, CurrentRevision: kv.Name + "-1", UpdateRevision: kv.Name + "-1",
		}
		return k8s.Status().Update(ctx, sts)
	})
}
