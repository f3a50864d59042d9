package chart

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"kvstore.dev/kvstore/internal/kubetest"
)

var (
	root     = kubetest.Root()
	chartDir = filepath.Join(root, "charts", "kvstore")
)

// skipOrFail skips the test, or fails it when $CI is set: in CI a missing
// tool is a broken setup, not a reason to test less.
func skipOrFail(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// helm runs the helm binary with its cache, configuration and data in a
// temporary directory, and a kubeconfig that is either envtest's or none.
type helm struct {
	t          testing.TB
	bin        string
	env        []string
	kubeconfig string
}

func newHelm(t testing.TB) *helm {
	t.Helper()
	bin := os.Getenv("HELM")
	if bin == "" {
		bin = filepath.Join(root, "bin", "helm")
	}
	if _, err := os.Stat(bin); err != nil {
		skipOrFail(t, fmt.Sprintf("no helm at %s: run `hack/install-helm.sh` (make test does) or set HELM", bin))
	}
	home := t.TempDir()
	env := append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
		"KUBECONFIG="+filepath.Join(home, "no-kubeconfig"), // never the user's cluster
	)
	return &helm{t: t, bin: bin, env: env}
}

// run runs helm; err includes stderr.
func (h *helm) run(args ...string) (string, error) {
	h.t.Helper()
	if h.kubeconfig != "" {
		args = append(args, "--kubeconfig", h.kubeconfig)
	}
	return runCmd(h.env, nil, h.bin, args...)
}

// must runs helm and fails the test on an error.
func (h *helm) must(args ...string) string {
	h.t.Helper()
	out, err := h.run(args...)
	if err != nil {
		h.t.Fatalf("helm %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// template renders the chart as release name in namespace ns with extra
// arguments (-f, --set, --show-only).
func (h *helm) template(name, ns string, args ...string) (string, error) {
	h.t.Helper()
	return h.run(append([]string{"template", name, chartDir, "--namespace", ns}, args...)...)
}

func runCmd(env []string, stdin []byte, bin string, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	} else if s := strings.TrimSpace(stderr.String()); s != "" {
		// Warnings (deprecations, Pod Security) must not go unnoticed.
		return stdout.String(), &warningError{s}
	}
	return stdout.String(), err
}

// warningError is a command that succeeded but printed to stderr.
type warningError struct{ stderr string }

func (w *warningError) Error() string { return "succeeded with warnings: " + w.stderr }

// ignoreWarnings drops a warningError.
func ignoreWarnings(out string, err error) (string, error) {
	var w *warningError
	if errors.As(err, &w) {
		return out, nil
	}
	return out, err
}

// cluster is an envtest API server with a kubeconfig for helm and kubectl.
type cluster struct {
	t          testing.TB
	kubeconfig string
	kubectl    string
}

// startCluster starts envtest: with the KVStore CRD of config/crd/bases (and
// the CRDs in extraCRDDirs) when withCRD, else with no CRD at all.
func startCluster(t testing.TB, withCRD bool, extraCRDDirs ...string) *cluster {
	t.Helper()
	var env *envtest.Environment
	if withCRD {
		_, env = kubetest.Start(t, extraCRDDirs...)
	} else {
		if kubetest.Assets() == "" {
			skipOrFail(t, "no kube-apiserver: run `hack/envtest-bins.sh` (make test does) or set KUBEBUILDER_ASSETS")
		}
		env = &envtest.Environment{BinaryAssetsDirectory: kubetest.Assets()}
		if _, err := env.Start(); err != nil {
			t.Fatalf("start the control plane: %v", err)
		}
		t.Cleanup(func() {
			if err := env.Stop(); err != nil {
				t.Errorf("stop the control plane: %v", err)
			}
		})
	}
	user, err := env.ControlPlane.AddUser(envtest.User{Name: "charttest", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatalf("add a user: %v", err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		t.Fatalf("kubeconfig: %v", err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	return &cluster{t: t, kubeconfig: path, kubectl: kubetest.Kubectl()}
}

// run runs kubectl with stdin; err includes stderr, warnings included.
func (c *cluster) run(stdin []byte, args ...string) (string, error) {
	c.t.Helper()
	return runCmd(os.Environ(), stdin, c.kubectl, append([]string{"--kubeconfig", c.kubeconfig}, args...)...)
}

// must runs kubectl and fails the test on an error (warnings are fine).
func (c *cluster) must(stdin []byte, args ...string) string {
	c.t.Helper()
	out, err := ignoreWarnings(c.run(stdin, args...))
	if err != nil {
		c.t.Fatalf("kubectl %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// restrictedNamespace creates namespace ns, enforcing and warning about the
// restricted Pod Security Standard.
func (c *cluster) restrictedNamespace(ns string) {
	c.t.Helper()
	manifest := fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: %s
  labels:
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/warn: restricted
`, ns)
	c.must([]byte(manifest), "apply", "--server-side", "--field-manager=charttest", "-f", "-")
}

// object is a decoded Kubernetes object.
type object map[string]any

func (o object) kind() string { s, _ := o["kind"].(string); return s }

func (o object) name() string { return str(o, "metadata", "name") }

// splitManifests decodes a multi-document YAML stream, skipping empty
// documents.
func splitManifests(t testing.TB, stream string) []object {
	t.Helper()
	var objs []object
	for _, doc := range strings.Split(stream, "\n---") {
		var o object
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatalf("decode a rendered document: %v\n%s", err, doc)
		}
		if len(o) > 0 {
			objs = append(objs, o)
		}
	}
	return objs
}

// find returns the objects of a kind.
func find(objs []object, kind string) []object {
	var out []object
	for _, o := range objs {
		if o.kind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// get walks nested maps.
func get(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			if o, isObj := v.(object); isObj {
				m = o
			} else {
				return nil
			}
		}
		v = m[p]
	}
	return v
}

func str(v any, path ...string) string { s, _ := get(v, path...).(string); return s }

// readYAML decodes a YAML file of the repository.
func readYAML(t testing.TB, rel string) object {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	var o object
	if err := yaml.Unmarshal(data, &o); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return o
}

// examples lists the example values files.
func examples(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chartDir, "examples", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples in %s/examples (%v)", chartDir, err)
	}
	sort.Strings(files)
	return files
}

// valuesCase is a set of values to render: the defaults, or a values file
// and --set arguments. Its namespace is the file's watchNamespace, if any.
type valuesCase struct {
	name string
	args []string
	ns   string
}

func valuesCases(t testing.TB) []valuesCase {
	t.Helper()
	cases := []valuesCase{
		{name: "defaults", ns: "kvstore"},
		{name: "instance-defaults", args: []string{"--set", "instance.enabled=true"}, ns: "kvstore"},
	}
	for _, f := range examples(t) {
		c := valuesCase{name: strings.TrimSuffix(filepath.Base(f), ".yaml"), args: []string{"-f", f}, ns: "kvstore"}
		if ns := str(readYAML(t, mustRel(t, f)), "watchNamespace"); ns != "" {
			c.ns = ns
		}
		cases = append(cases, c)
	}
	return cases
}

func mustRel(t testing.TB, path string) string {
	t.Helper()
	rel, err := filepath.Rel(root, path)
	if err != nil {
		t.Fatal(err)
	}
	return rel
}
