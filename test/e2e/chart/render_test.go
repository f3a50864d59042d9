package chart

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestLint runs `helm lint --strict` with the default values and each
// example values file: --strict turns lint warnings into failures.
func TestLint(t *testing.T) {
	t.Parallel()
	h := newHelm(t)
	for _, c := range valuesCases(t) {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			out, err := h.run(append([]string{"lint", "--strict", chartDir, "--namespace", c.ns}, c.args...)...)
			if err != nil {
				t.Fatalf("helm lint --strict: %v\n%s", err, out)
			}
			if !strings.Contains(out, "1 chart(s) linted, 0 chart(s) failed") {
				t.Fatalf("unexpected lint output:\n%s", out)
			}
		})
	}
}

// appliedRE matches kubectl's line for one object of a server-side dry run.
var appliedRE = regexp.MustCompile(`(?m)^\S+ serverside-applied \(server dry run\)$`)

// TestServerDryRun renders the chart with each values case and applies the
// result with a server-side dry run to a real API server: every object,
// the KVStore and the `helm test` pod included, must pass the API server's
// validation (the chart's CRD is installed first, so its schema and CEL
// rules judge the KVStore) and its Pod Security admission, with the
// namespaces enforcing the restricted standard; a warning about a
// Deployment's pod template fails the test too.
func TestServerDryRun(t *testing.T) {
	t.Parallel()
	h := newHelm(t)
	c := startCluster(t, true, filepath.Join(root, "test", "e2e", "chart", "testdata", "crds"))

	// The chart's CRD, for real, over config/crd/bases's.
	crd, err := h.template("kvstore", "kvstore", "--show-only", "templates/crd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c.must([]byte(crd), "apply", "--server-side", "--field-manager=helm", "--force-conflicts", "-f", "-")
	c.must(nil, "wait", "--for=condition=Established", "crd/kvstores.kvstore.dev", "--timeout=30s")

	t.Run("restricted namespaces refuse a privileged pod", func(t *testing.T) {
		// Without this the Pod Security checks below could pass vacuously.
		c.restrictedNamespace("pss-check")
		pod := `apiVersion: v1
kind: Pod
metadata: {name: privileged, namespace: pss-check}
spec:
  containers:
  - {name: c, image: busybox, securityContext: {privileged: true}}
`
		_, err := c.run([]byte(pod), "apply", "--server-side", "--dry-run=server", "-f", "-")
		if err == nil || !strings.Contains(err.Error(), "violates PodSecurity") {
			t.Fatalf("a privileged pod was not refused by Pod Security admission: %v", err)
		}
	})

	for _, vc := range valuesCases(t) {
		t.Run(vc.name, func(t *testing.T) {
			c.restrictedNamespace(vc.ns)
			rendered, err := h.template("kvstore", vc.ns, vc.args...)
			if err != nil {
				t.Fatal(err)
			}
			objs := splitManifests(t, rendered)
			if len(find(objs, "Deployment")) != 1 {
				t.Fatalf("want one Deployment, rendered %d", len(find(objs, "Deployment")))
			}
			out, err := c.run([]byte(rendered), "apply", "--server-side", "--dry-run=server",
				"--field-manager=helm", "--force-conflicts", "-f", "-")
			if err != nil {
				t.Fatalf("server-side dry run: %v\n%s", err, out)
			}
			if n := len(appliedRE.FindAllString(out, -1)); n != len(objs) {
				t.Fatalf("%d objects rendered, %d accepted:\n%s", len(objs), n, out)
			}
		})
	}

	h.kubeconfig = c.kubeconfig
	tokenCmd := "get secret %s -o jsonpath='{.data.token}' | base64 -d"
	for _, tc := range []struct {
		name       string
		args       []string
		want, dont []string
	}{
		{"notes/operator only", nil,
			[]string{"kubectl -n kvstore rollout status deployment/kvstore-operator", "--reuse-values --set instance.enabled=true"},
			[]string{"port-forward", "base64"}},
		{"notes/generated token", []string{"--set", "instance.enabled=true"},
			[]string{fmt.Sprintf(tokenCmd, "kvstore-auth"), "port-forward svc/kvstore 8080:8080", "https://kvstore.kvstore.svc:8080",
				`get secret kvstore-ca-bundle -o jsonpath='{.data.ca\.crt}'`, "helm test kvstore"},
			[]string{"http://"}},
		{"notes/ingress with the operator's CA", []string{"--set", "instance.enabled=true", "--set", "instance.name=kv", "--set", "instance.spec.ingress.enabled=true", "--set", "instance.spec.ingress.host=kv.example.com"},
			[]string{fmt.Sprintf(tokenCmd, "kv-auth"), "port-forward svc/kv 8080:8080", "https://kv.example.com/", `get secret kv-tls -o jsonpath='{.data.ca\.crt}'`},
			nil},
		{"notes/example replicated-ingress", []string{"-f", filepath.Join(chartDir, "examples", "replicated-ingress.yaml")},
			[]string{"https://kv.example.com/", "your Secret kv-example-com-tls", "port-forward svc/kv 8080:8080"},
			[]string{"get secret kv-tls"}},
		{"notes/pods without API TLS", []string{"--set", "instance.enabled=true", "--set", "instance.spec.tls.pods=Disabled"},
			[]string{"http://kvstore.kvstore.svc:8080", "http://127.0.0.1:8080/api/v1/status"},
			[]string{"ca-bundle", "https://"}},
		{"notes/user token", []string{"--set", "instance.enabled=true", "--set", "instance.spec.auth.secretName=my-token"},
			[]string{fmt.Sprintf(tokenCmd, "my-token"), "from your Secret"},
			[]string{"kvstore-auth"}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkNotes(t, h, "kvstore", tc.args, tc.want, tc.dont) })
	}
}

// TestTestHookPod checks the `helm test` pod: rendered only with an
// instance, annotated as a test hook, reading the admin token from the
// right Secret, and reaching the store through its client Service.
func TestTestHookPod(t *testing.T) {
	t.Parallel()
	h := newHelm(t)
	tests := []struct {
		name       string
		args       []string
		wantPod    bool
		secret     string
		containers string // init containers / containers
	}{
		{name: "no instance", wantPod: false},
		{name: "generated token", args: []string{"--set", "instance.enabled=true"}, wantPod: true, secret: "kvstore-auth", containers: "healthz/put-get"},
		{name: "user token", args: []string{"--set", "instance.enabled=true", "--set", "instance.name=kv", "--set", "instance.spec.auth.secretName=my-token"}, wantPod: true, secret: "my-token", containers: "healthz/put-get"},
		{name: "health only", args: []string{"--set", "instance.enabled=true", "--set", "tests.putGet.enabled=false"}, wantPod: true, containers: "/healthz"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := h.template("kvstore", "kvstore", tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			var pods []object
			for _, o := range find(splitManifests(t, out), "Pod") {
				if str(o, "metadata", "annotations", "helm.sh/hook") == "test" {
					pods = append(pods, o)
				}
			}
			if !tc.wantPod {
				if len(pods) != 0 {
					t.Fatalf("a test pod without an instance: %v", pods)
				}
				return
			}
			if len(pods) != 1 {
				t.Fatalf("want one test hook pod, got %d", len(pods))
			}
			pod := pods[0]
			if got := containerNames(pod, "initContainers") + "/" + containerNames(pod, "containers"); got != tc.containers {
				t.Errorf("containers %q, want %q", got, tc.containers)
			}
			if !strings.Contains(out, "https://") || !strings.Contains(out, ".svc:8080/healthz") ||
				!strings.Contains(out, "/etc/kvstore-tls/ca.crt") || !strings.Contains(out, "-ca-bundle") || strings.Contains(out, "-pod-tls") {
				t.Errorf("the pod does not probe the client Service's /healthz over HTTPS verified with <name>-ca-bundle's ca.crt (and only that)")
			}
			if tc.secret != "" {
				// The token is a file of the auth Secret's volume, passed by
				// path: never an argument or an environment variable.
				if !strings.Contains(out, fmt.Sprintf("secretName: %s\n        items: [{key: token, path: token}]", tc.secret)) ||
					!strings.Contains(out, "--put-get, --token-file, /etc/kvstore-auth/token") {
					t.Errorf("the put-get step does not read the token from Secret %s key token, mounted at /etc/kvstore-auth", tc.secret)
				}
				if strings.Contains(out, "secretKeyRef") {
					t.Errorf("the test pod puts a Secret in an environment variable")
				}
			}
		})
	}
}

func containerNames(pod object, field string) string {
	list, _ := get(pod, "spec", field).([]any)
	var names []string
	for _, c := range list {
		names = append(names, str(c, "name"))
	}
	return strings.Join(names, ",")
}

// TestOperatorPodsNotSelectedByStore guards against the operator's pods
// carrying the labels that select a KVStore's server pods
// (app.kubernetes.io/name=kvstore, app.kubernetes.io/instance=<KVStore>):
// the store's client Service would send requests to the operator.
func TestOperatorPodsNotSelectedByStore(t *testing.T) {
	t.Parallel()
	h := newHelm(t)
	for _, release := range []string{"kvstore", "kv"} {
		out, err := h.template(release, "kvstore", "--set", "instance.enabled=true")
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range splitManifests(t, out) {
			labels, _ := get(o, "spec", "template", "metadata", "labels").(map[string]any)
			if o.kind() == "Pod" {
				labels, _ = get(o, "metadata", "labels").(map[string]any)
			}
			if labels == nil {
				continue
			}
			if labels["app.kubernetes.io/name"] == "kvstore" && labels["app.kubernetes.io/instance"] == release {
				t.Errorf("release %s: the pods of %s %s would be selected by KVStore %s's Services", release, o.kind(), o.name(), release)
			}
		}
	}
}

// checkNotes installs with a server-side dry run (so Helm itself builds and
// validates every object against the cluster) and checks the NOTES. The CRD
// is left out: it exists already, and not as part of a release, which Helm
// refuses to take over.
func checkNotes(t *testing.T, h *helm, ns string, args []string, want, dont []string) {
	t.Helper()
	args = append([]string{"install", "kvstore", chartDir, "--namespace", ns, "--dry-run=server", "--set", "crds.install=false"}, args...)
	out, err := h.run(args...)
	if err != nil {
		t.Fatalf("helm install --dry-run=server: %v", err)
	}
	_, notes, ok := strings.Cut(out, "\nNOTES:\n")
	if !ok {
		t.Fatalf("no NOTES in\n%s", out)
	}
	for _, w := range want {
		if !strings.Contains(notes, w) {
			t.Errorf("the NOTES do not say %q:\n%s", w, notes)
		}
	}
	for _, d := range dont {
		if strings.Contains(notes, d) {
			t.Errorf("the NOTES say %q:\n%s", d, notes)
		}
	}
}
