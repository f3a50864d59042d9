package operator

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"kvstore.dev/kvstore/internal/kubetest"
	"kvstore.dev/kvstore/test/harness"
)

// TestSecureMetrics scrapes the operator's metrics with --metrics-secure,
// as Prometheus does: over HTTPS with a ServiceAccount's bearer token,
// which the operator checks with a TokenReview and a SubjectAccessReview
// against the API server (envtest's kube-apiserver signs and verifies
// ServiceAccount tokens). A token of a ServiceAccount bound to
// config/rbac/metrics_reader_role.yaml gets the kvstore controller's
// metrics; no token gets 401, a token the API server did not issue is
// refused (500 from the filter, see below); a valid token of a
// ServiceAccount without the role gets 403.
func TestSecureMetrics(t *testing.T) {
	cfg, env := kubetest.Start(t)
	ctx := context.Background()
	k8s, err := client.New(cfg, client.Options{Scheme: Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	const ns = "monitoring"
	if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(kubetest.Root(), "config", "rbac", "metrics_reader_role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	reader := &rbacv1.ClusterRole{}
	if err := yaml.Unmarshal(b, reader); err != nil {
		t.Fatal(err)
	}
	if err := k8s.Create(ctx, reader); err != nil {
		t.Fatal(err)
	}
	token := func(name string) string {
		t.Helper()
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		if err := k8s.Create(ctx, sa); err != nil {
			t.Fatal(err)
		}
		tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptrTo(int64(3600))}}
		if err := k8s.SubResource("token").Create(ctx, sa, tr); err != nil {
			t.Fatalf("token for ServiceAccount %s: %v", name, err)
		}
		return tr.Status.Token
	}
	prometheus, stranger := token("prometheus"), token("stranger")
	if err := k8s.Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "prometheus-metrics-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: reader.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "prometheus"}},
	}); err != nil {
		t.Fatal(err)
	}

	user, err := env.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	c := Default()
	c.Kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(c.Kubeconfig, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	c.MetricsAddr, c.ProbeAddr = harness.FreeAddr(t), harness.FreeAddr(t)
	c.MetricsSecure = true
	c.LeaderElect = false
	c.DefaultImage = "kvstore/kvstore:test"
	c.skipNameValidation = true // the package's other tests run operators too
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- Run(runCtx, c, Logger(c, io.Discard)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("operator: %v", err)
		}
	})

	// The certificate is the operator's self-signed one, as the chart's
	// ServiceMonitor scrapes it (insecureSkipVerify).
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	scrape := func(token string) (int, string, error) {
		req, err := http.NewRequest(http.MethodGet, "https://"+c.MetricsAddr+"/metrics", nil)
		if err != nil {
			return 0, "", err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), err
	}
	harness.Eventually(t, "the kvstore controller's metrics with the reader's token", 60*time.Second, func() error {
		code, body, err := scrape(prometheus)
		switch {
		case err != nil:
			return err
		case code != http.StatusOK:
			return fmt.Errorf("status %d: %.200s", code, body)
		case !strings.Contains(body, `controller="kvstore"`):
			return fmt.Errorf("no metrics of the kvstore controller")
		}
		return nil
	})
	// A token the TokenReview refuses with an error (one that is no JWT of
	// the API server's) gets 500 "Authentication failed" from
	// controller-runtime's filter, not 401: refused all the same.
	for name, tc := range map[string]struct {
		token string
		want  []int
	}{
		"no token":                  {"", []int{http.StatusUnauthorized}},
		"a token nobody issued":     {"not-a-token-0123456789", []int{http.StatusUnauthorized, http.StatusInternalServerError}},
		"a token without the role":  {stranger, []int{http.StatusForbidden}},
		"the reader's token, again": {prometheus, []int{http.StatusOK}},
	} {
		code, body, err := scrape(tc.token)
		if err != nil {
			t.Errorf("%s: %v", name, err)
		} else if !slices.Contains(tc.want, code) {
			t.Errorf("%s: status %d, want %v: %.200s", name, code, tc.want, body)
		}
		if tc.want[0] != http.StatusOK && strings.Contains(body, "controller_runtime") {
			t.Errorf("%s: metrics served without authorization", name)
		}
	}
	// Plain HTTP is not served on the secure port.
	if resp, err := http.Get("http://" + c.MetricsAddr + "/metrics"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP got the metrics")
		}
	}
}

func ptrTo[T any](v T) *T { return &v }
