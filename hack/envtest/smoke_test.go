package envtest_test

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// TestSmoke starts an envtest control plane (kube-apiserver and etcd from
// KUBEBUILDER_ASSETS, as built by hack/envtest-bins.sh), round-trips a
// ConfigMap through a controller-runtime client, checks kubectl against it,
// and stops it. Everything listens on loopback.
//
//	cd hack/envtest && KUBEBUILDER_ASSETS=$(../envtest-bins.sh) go test ./...
func TestSmoke(t *testing.T) {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("KUBEBUILDER_ASSETS is not set in CI: make test sets it from hack/envtest-bins.sh")
		}
		t.Skip("KUBEBUILDER_ASSETS is not set; run: KUBEBUILDER_ASSETS=$(../envtest-bins.sh) go test ./...")
	}
	env := &envtest.Environment{BinaryAssetsDirectory: assets}
	start := time.Now()
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start control plane: %v", err)
	}
	t.Logf("control plane up in %v", time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop control plane: %v", err)
		}
	})

	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	info, err := dc.ServerVersion()
	if err != nil {
		t.Fatalf("server version: %v", err)
	}
	t.Logf("kube-apiserver %s at %s", info.GitVersion, cfg.Host)

	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	want := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "envtest-smoke"},
		Data:       map[string]string{"hello": "world"},
	}
	if err := c.Create(ctx, want); err != nil {
		t.Fatalf("create ConfigMap: %v", err)
	}
	var got corev1.ConfigMap
	if err := c.Get(ctx, client.ObjectKeyFromObject(want), &got); err != nil {
		t.Fatalf("get ConfigMap: %v", err)
	}
	if got.Data["hello"] != "world" || got.UID == "" {
		t.Fatalf("read back %+v, want data hello=world and a UID", got)
	}
	t.Logf("ConfigMap %s/%s round-tripped (uid %s, resourceVersion %s)", got.Namespace, got.Name, got.UID, got.ResourceVersion)

	// kubectl from the same directory, pointed at the control plane.
	kubectl := env.ControlPlane.KubeCtl()
	stdout, stderr, err := kubectl.Run("get", "configmap", "-n", "default", "envtest-smoke", "-o", "jsonpath={.data.hello}")
	if err != nil {
		errOut, _ := io.ReadAll(stderr)
		t.Fatalf("kubectl: %v: %s", err, errOut)
	}
	out, _ := io.ReadAll(stdout)
	if strings.TrimSpace(string(out)) != "world" {
		t.Fatalf("kubectl get configmap: got %q, want %q", out, "world")
	}
	t.Logf("kubectl read it back too")
}
