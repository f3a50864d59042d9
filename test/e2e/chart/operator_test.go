package chart

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"

	"kvstore.dev/kvstore/internal/testlog"
	"kvstore.dev/kvstore/test/harness"
)

// TestOperatorWorksWithChartRBAC installs the chart's RBAC and runs the real
// operator binary as the chart's ServiceAccount (impersonated; envtest runs
// no pods): it must win the leader election through the chart's Role and
// reconcile a KVStore — create its StatefulSet and write its status — with
// no request refused. Cluster-wide (ClusterRoleBinding) and with
// watchNamespace (a RoleBinding in that namespace only).
func TestOperatorWorksWithChartRBAC(t *testing.T) {
	t.Parallel()
	h := newHelm(t)
	c := startCluster(t, true)
	h.kubeconfig = c.kubeconfig
	bin := harness.Binary(t, "operator")

	tests := []struct {
		name, release, ns, watch, storeNS string
	}{
		{name: "all namespaces", release: "kvs", ns: "op-all", storeNS: "apps-all"},
		{name: "watchNamespace", release: "kvs", ns: "op-one", watch: "apps-one", storeNS: "apps-one"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c.restrictedNamespace(tc.storeNS)
			// The CRD exists already (not from a release): crds.install=false.
			args := []string{"install", tc.release, chartDir, "--namespace", tc.ns, "--create-namespace", "--set", "crds.install=false"}
			if tc.watch != "" {
				args = append(args, "--set", "watchNamespace="+tc.watch)
			}
			h.must(args...)

			sa := fmt.Sprintf("system:serviceaccount:%s:%s-operator", tc.ns, tc.release)
			kubeconfig := impersonating(t, c.kubeconfig, sa, tc.ns)
			var logs testlog.Buffer
			ctx, cancel := context.WithCancel(context.Background())
			op := exec.CommandContext(ctx, bin, "--kubeconfig", kubeconfig,
				"--leader-elect=true", "--leader-election-namespace", tc.ns,
				"--watch-namespace="+tc.watch, "--metrics-bind-address", "0",
				"--health-probe-bind-address", "127.0.0.1:0", "--log-format", "text")
			op.Stdout, op.Stderr = &logs, &logs
			if err := op.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				cancel()
				_ = op.Wait()
				if t.Failed() {
					t.Logf("operator log:\n%s", logs.String())
				}
			})

			store := fmt.Sprintf("apiVersion: kvstore.dev/v1\nkind: KVStore\nmetadata: {name: demo, namespace: %s}\nspec: {replicas: 1}\n", tc.storeNS)
			c.must([]byte(store), "apply", "--server-side", "-f", "-")
			c.must(nil, "wait", "--namespace", tc.storeNS, "--for=create", "statefulset/demo", "--timeout=60s")
			c.must(nil, "wait", "--namespace", tc.storeNS, "--for=jsonpath={.status.observedGeneration}=1", "kvstore/demo", "--timeout=60s")
			if got := c.must(nil, "get", "lease", "--namespace", tc.ns, "kvstore-operator.kvstore.dev", "-o", "jsonpath={.spec.holderIdentity}"); got == "" {
				t.Errorf("no leader in the Lease")
			}
			if l := logs.String(); strings.Contains(strings.ToLower(l), "forbidden") {
				t.Errorf("the operator was refused something:\n%s", l)
			}
		})
	}
}

// impersonating writes a copy of kubeconfig that acts as a ServiceAccount,
// with the groups its token would carry.
func impersonating(t *testing.T, kubeconfig, user, ns string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, auth := range cfg.AuthInfos {
		auth.Impersonate = user
		auth.ImpersonateGroups = []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
