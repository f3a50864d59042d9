package operator

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	kvv1 "kvstore.dev/kvstore/api/v1"
	"kvstore.dev/kvstore/internal/kubetest"
	"kvstore.dev/kvstore/test/harness"
)

// TestDeployAndRun installs what `make deploy` installs (kubectl apply -k
// config/default) into a real API server, applies the sample, and runs the
// operator as cmd/operator does, with leader election and restricted to one
// namespace: the sample there gets its StatefulSet, one elsewhere does not.
func TestDeployAndRun(t *testing.T) {
	cfg, env := kubetest.Start(t)
	user, err := env.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	kcPath := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kcPath, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	kubectl := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(kubetest.Kubectl(), append([]string{"--kubeconfig", kcPath}, args...)...)
		cmd.Dir = kubetest.Root()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	out := kubectl("apply", "--server-side", "-k", "config/default")
	for _, want := range []string{
		"namespace/kvstore-system", "customresourcedefinition.apiextensions.k8s.io/kvstores.kvstore.dev",
		"clusterrole.rbac.authorization.k8s.io/kvstore-manager-role", "deployment.apps/kvstore-controller-manager",
		"serviceaccount/kvstore-controller-manager", "role.rbac.authorization.k8s.io/kvstore-leader-election-role",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl apply -k config/default did not apply %s:\n%s", want, out)
		}
	}
	kubectl("create", "namespace", "apps")
	kubectl("create", "namespace", "other")
	kubectl("apply", "-n", "apps", "-k", "config/samples")
	kubectl("apply", "-n", "other", "-k", "config/samples")

	c := Default()
	c.Kubeconfig = kcPath
	c.MetricsAddr = harness.FreeAddr(t)
	c.MetricsSecure = false // plain HTTP: the test reads /metrics without a token
	c.ProbeAddr = harness.FreeAddr(t)
	c.LeaderElectionNamespace = "kvstore-system"
	c.WatchNamespace = "apps"
	c.DefaultImage = "kvstore/kvstore:test"
	c.skipNameValidation = true // the package's other tests run operators too
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, c, Logger(c, io.Discard)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("operator: %v", err)
		}
	})

	k8s, err := client.New(cfg, client.Options{Scheme: Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, "the sample's StatefulSet in the watched namespace", 30*time.Second, func() error {
		return k8s.Get(ctx, types.NamespacedName{Namespace: "apps", Name: "demo"}, &appsv1.StatefulSet{})
	})
	harness.Eventually(t, "the leader election Lease", 30*time.Second, func() error {
		return k8s.Get(ctx, types.NamespacedName{Namespace: "kvstore-system", Name: "kvstore-operator.kvstore.dev"}, &coordinationv1.Lease{})
	})
	harness.Eventually(t, "readyz", 30*time.Second, func() error {
		resp, err := http.Get("http://" + c.ProbeAddr + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
	harness.Eventually(t, "operator metrics", 30*time.Second, func() error {
		resp, err := http.Get("http://" + c.MetricsAddr + "/metrics")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(b), `controller_runtime_reconcile_total{controller="kvstore"`) {
			return fmt.Errorf("no reconcile metrics")
		}
		return nil
	})
	// The sample's status is written; the other namespace stays untouched.
	harness.Eventually(t, "status", 30*time.Second, func() error {
		kv := &kvv1.KVStore{}
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: "apps", Name: "demo"}, kv); err != nil {
			return err
		}
		if kv.Status.ObservedGeneration != kv.Generation || len(kv.Status.Conditions) != 3 {
			return fmt.Errorf("status %+v", kv.Status)
		}
		return nil
	})
	// kubectl's view: the short name, the printer columns and scale.
	table := kubectl("get", "kvs", "-n", "apps")
	if !strings.Contains(table, "REPLICAS") || !strings.Contains(table, "READY") || !strings.Contains(table, "HOST") || !strings.Contains(table, "kv.example.com") {
		t.Errorf("kubectl get kvs:\n%s", table)
	}
	kubectl("scale", "-n", "apps", "kvs/demo", "--replicas=5")
	harness.Eventually(t, "kubectl scale reaches the StatefulSet", 30*time.Second, func() error {
		sts := &appsv1.StatefulSet{}
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: "apps", Name: "demo"}, sts); err != nil {
			return err
		}
		if *sts.Spec.Replicas != 5 {
			return fmt.Errorf("replicas %d", *sts.Spec.Replicas)
		}
		return nil
	})

	var secrets corev1.SecretList
	if err := k8s.List(ctx, &secrets, client.InNamespace("other")); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Get(ctx, types.NamespacedName{Namespace: "other", Name: "demo"}, &appsv1.StatefulSet{}); err == nil || len(secrets.Items) != 0 {
		t.Errorf("the operator acted outside --watch-namespace (%d Secrets in namespace other, StatefulSet get: %v)", len(secrets.Items), err)
	}
}
