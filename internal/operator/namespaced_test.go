package operator

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	kvv1 "kvstore.dev/kvstore/api/v1"
	"kvstore.dev/kvstore/internal/kubetest"
	"kvstore.dev/kvstore/test/harness"
)

// renderKustomize renders the kustomization in dir (relative to the
// repository root) with kubectl's kustomize and returns its documents by
// "Kind name" (namespaced ones "Kind namespace/name").
func renderKustomize(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	kubectl := kubetest.Kubectl()
	if _, err := os.Stat(kubectl); err != nil {
		t.Skipf("no kubectl (%v): build the envtest binaries (hack/envtest-bins.sh)", err)
	}
	cmd := exec.Command(kubectl, "kustomize", dir)
	cmd.Dir = kubetest.Root()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, stderr.String())
	}
	docs := map[string][]byte{}
	for _, doc := range strings.Split(string(out), "\n---\n") {
		var m metav1.PartialObjectMetadata
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatalf("a document of %s: %v", dir, err)
		}
		k := m.Kind + " " + m.Name
		if m.Namespace != "" {
			k = m.Kind + " " + m.Namespace + "/" + m.Name
		}
		docs[k] = []byte(doc)
	}
	return docs
}

func mustUnmarshal(t *testing.T, b []byte, into any) {
	t.Helper()
	if b == nil {
		t.Fatalf("missing document for %T", into)
	}
	if err := yaml.Unmarshal(b, into); err != nil {
		t.Fatal(err)
	}
}

// TestNamespacedOverlayRenders renders config/namespaced: the manager's
// rules (those of config/rbac/role.yaml) come as a Role and RoleBinding in
// the operator's namespace, not as a ClusterRole; no ClusterRole left in
// it grants anything on Secrets or the operator's other children; and the
// Deployment sets WATCH_NAMESPACE to its own namespace.
func TestNamespacedOverlayRenders(t *testing.T) {
	docs := renderKustomize(t, "config/namespaced")
	const ns = "kvstore-system"

	want := &rbacv1.ClusterRole{}
	b, err := os.ReadFile(filepath.Join(kubetest.Root(), "config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	mustUnmarshal(t, b, want)
	role := &rbacv1.Role{}
	mustUnmarshal(t, docs["Role "+ns+"/kvstore-manager-role"], role)
	if !equality.Semantic.DeepEqual(role.Rules, want.Rules) {
		t.Errorf("the Role's rules differ from config/rbac/role.yaml's:\n%v\nwant\n%v", role.Rules, want.Rules)
	}
	rb := &rbacv1.RoleBinding{}
	mustUnmarshal(t, docs["RoleBinding "+ns+"/kvstore-manager-rolebinding"], rb)
	if rb.RoleRef.Kind != "Role" || rb.RoleRef.Name != "kvstore-manager-role" || len(rb.Subjects) != 1 ||
		rb.Subjects[0].Kind != "ServiceAccount" || rb.Subjects[0].Name != "kvstore-controller-manager" || rb.Subjects[0].Namespace != ns {
		t.Errorf("RoleBinding: roleRef %+v, subjects %+v; want the Role, bound to ServiceAccount %s/kvstore-controller-manager", rb.RoleRef, rb.Subjects, ns)
	}
	for k, doc := range docs {
		kind, _, _ := strings.Cut(k, " ")
		switch kind {
		case "ClusterRoleBinding":
			crb := &rbacv1.ClusterRoleBinding{}
			mustUnmarshal(t, doc, crb)
			if crb.RoleRef.Name == "kvstore-manager-role" {
				t.Errorf("%s binds the manager's rules cluster-wide", k)
			}
		case "ClusterRole":
			cr := &rbacv1.ClusterRole{}
			mustUnmarshal(t, doc, cr)
			if cr.Name == "kvstore-manager-role" {
				t.Errorf("%s: the manager's rules are a ClusterRole", k)
			}
			for _, r := range cr.Rules {
				for _, res := range r.Resources {
					if res == "secrets" || res == "statefulsets" || res == "configmaps" {
						t.Errorf("%s grants %v on %s cluster-wide", k, r.Verbs, res)
					}
				}
			}
		}
	}
	dep := &appsv1.Deployment{}
	mustUnmarshal(t, docs["Deployment "+ns+"/kvstore-controller-manager"], dep)
	found := false
	for _, e := range dep.Spec.Template.Spec.Containers[0].Env {
		if e.Name == "WATCH_NAMESPACE" {
			found = e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace"
		}
	}
	if !found {
		t.Errorf("the Deployment does not set WATCH_NAMESPACE from metadata.namespace: %+v", dep.Spec.Template.Spec.Containers[0].Env)
	}
}

// TestNamespacedOverlayRuns installs config/namespaced into a real API
// server and runs the operator as its ServiceAccount, with a token of that
// ServiceAccount (so it has exactly the overlay's Role, RoleBinding and
// the cluster-wide metrics and leader election grants) and the
// WATCH_NAMESPACE the Deployment would set: the sample in its namespace is
// reconciled, status included, with no Forbidden; the sample in another
// namespace is left alone.
func TestNamespacedOverlayRuns(t *testing.T) {
	cfg, _ := kubetest.Start(t)
	ctx := context.Background()
	k8s, err := client.New(cfg, client.Options{Scheme: Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	kubeconfigFor := func(token string) string {
		t.Helper()
		kc := clientcmdapi.NewConfig()
		kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
		kc.AuthInfos["user"] = &clientcmdapi.AuthInfo{Token: token, ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData}
		kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "user"}
		kc.CurrentContext = "envtest"
		if token != "" { // the ServiceAccount's token alone
			kc.AuthInfos["user"].ClientCertificateData, kc.AuthInfos["user"].ClientKeyData = nil, nil
		}
		p := filepath.Join(t.TempDir(), "kubeconfig")
		if err := clientcmd.WriteToFile(*kc, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	admin := kubeconfigFor("")
	kubectl := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(kubetest.Kubectl(), append([]string{"--kubeconfig", admin}, args...)...)
		cmd.Dir = kubetest.Root()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	out := kubectl("apply", "--server-side", "-k", "config/namespaced")
	for _, want := range []string{"role.rbac.authorization.k8s.io/kvstore-manager-role", "rolebinding.rbac.authorization.k8s.io/kvstore-manager-rolebinding"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl apply -k config/namespaced did not apply %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "clusterrole.rbac.authorization.k8s.io/kvstore-manager-role") {
		t.Errorf("config/namespaced applied the manager's ClusterRole:\n%s", out)
	}
	const ns = "kvstore-system"
	kubectl("create", "namespace", "other")
	kubectl("apply", "-n", ns, "-k", "config/samples")
	kubectl("apply", "-n", "other", "-k", "config/samples")

	sa := &corev1.ServiceAccount{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "kvstore-controller-manager"}, sa); err != nil {
		t.Fatal(err)
	}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptrTo(int64(3600))}}
	if err := k8s.SubResource("token").Create(ctx, sa, tr); err != nil {
		t.Fatalf("a token of the operator's ServiceAccount: %v", err)
	}

	c := Default()
	c.Kubeconfig = kubeconfigFor(tr.Status.Token)
	c.MetricsAddr = "0"
	c.ProbeAddr = harness.FreeAddr(t)
	c.LeaderElectionNamespace = ns
	c.WatchNamespace, c.OperatorNamespace = ns, ns // as WATCH_NAMESPACE and POD_NAMESPACE from the Deployment
	c.DefaultImage = "kvstore/kvstore:test"
	c.skipNameValidation = true // the package's other tests run operators too
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	logs := &lockedWriter{w: new(bytes.Buffer)}
	go func() { done <- Run(runCtx, c, Logger(c, logs)) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("operator: %v", err)
			}
		})
	}
	t.Cleanup(stop)

	harness.Eventually(t, "the sample reconciled in the watched namespace", 60*time.Second, func() error {
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "demo"}, &appsv1.StatefulSet{}); err != nil {
			return err
		}
		kv := &kvv1.KVStore{}
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "demo"}, kv); err != nil {
			return err
		}
		if kv.Status.ObservedGeneration != kv.Generation {
			return fmt.Errorf("status not written: %+v", kv.Status)
		}
		if d := meta.FindStatusCondition(kv.Status.Conditions, kvv1.ConditionDegraded); d != nil && d.Status == metav1.ConditionTrue {
			return fmt.Errorf("degraded: %s: %s", d.Reason, d.Message)
		}
		return nil
	})
	var secrets corev1.SecretList
	if err := k8s.List(ctx, &secrets, client.InNamespace("other")); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: "other", Name: "demo"}, &appsv1.StatefulSet{}); err == nil || len(secrets.Items) != 0 {
		t.Errorf("the operator acted outside its namespace (%d Secrets in namespace other, StatefulSet get: %v)", len(secrets.Items), err)
	}
	other := &kvv1.KVStore{}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: "other", Name: "demo"}, other); err != nil || other.Status.ObservedGeneration != 0 {
		t.Errorf("the KVStore in namespace other has a status (%v): %+v", err, other.Status)
	}
	stop()
	if s := logs.String(); strings.Contains(strings.ToLower(s), "forbidden") {
		t.Errorf("the operator was refused something:\n%s", s)
	}
}

// lockedWriter is a buffer safe for the operator's concurrent logs and a
// reader while the operator still runs.
type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
