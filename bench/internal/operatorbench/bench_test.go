package operatorbench

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	kvv1 "kvstore.dev/kvstore/api/v1"
	"kvstore.dev/kvstore/bench/internal/mdsection"
	"kvstore.dev/kvstore/bench/internal/procstat"
	"kvstore.dev/kvstore/internal/kubetest"
	"kvstore.dev/kvstore/internal/operator"
)

const (
	latencyRuns  = 20  // KVStores (and direct-create rounds) in the latency phase
	memoryStores = 100 // KVStores the operator manages in the memory phase
	memoryNS     = 4   // namespaces they are spread over
	quietWindow  = 10 * time.Second
	defaultCmd   = "cd bench && KVSTORE_OPERATOR_BENCH=1 go test -count=1 -run '^TestOperatorBench$' -v -timeout 20m ./internal/operatorbench"
)

// TestOperatorBench is the operator's benchmark (see the package doc). It is
// a Test and not a Benchmark because it measures fixed amounts (20 KVStores
// one at a time, then 100 at once, against a control plane that takes
// seconds to start) next to a ceiling measured in the same run; b.N
// iterations would only repeat the expensive setup.
//
// Environment: KVSTORE_OPERATOR_BENCH_DOC (write the markdown into the
// operator section of this file, see mdsection.Operator),
// KVSTORE_OPERATOR_BENCH_LOGS (keep the operator's logs in this directory),
// KVSTORE_OPERATOR_BENCH_KUBECONFIG=flag (pass --kubeconfig instead of
// $KUBECONFIG), KVSTORE_OPERATOR_BENCH_WRAPPER (the script that ran this,
// for the report).
func TestOperatorBench(t *testing.T) {
	if os.Getenv("KVSTORE_OPERATOR_BENCH") == "" {
		t.Skip("set KVSTORE_OPERATOR_BENCH=1; run by make bench")
	}
	res := &Result{Command: "`" + defaultCmd + "`",
		Date: time.Now().UTC().Format(time.RFC3339), LoadStart: LoadAverage(), LogLevels: map[string]int{},
		QuietWindow: quietWindow, KubeconfigVia: "in `$KUBECONFIG` (controller-runtime's loader, as in-cluster: no client-side rate limit)"}
	if w := os.Getenv("KVSTORE_OPERATOR_BENCH_WRAPPER"); w != "" {
		res.Command = fmt.Sprintf("`%s` (run by `make bench`), which ran %s", w, res.Command)
	}
	viaFlag := os.Getenv("KVSTORE_OPERATOR_BENCH_KUBECONFIG") == "flag"
	if viaFlag {
		res.KubeconfigVia = "as `--kubeconfig` (client-go's default rate limit of 5 QPS, burst 10)"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 18*time.Minute)
	defer cancel()
	dir := os.Getenv("KVSTORE_OPERATOR_BENCH_LOGS")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin, err := BuildOperator(ctx, kubetest.Root(), dir)
	check(t, err)
	cfg, env := kubetest.Start(t)
	res.ControlPlane = controlPlaneVersions(env.BinaryAssetsDirectory)
	cfg = rest.CopyConfig(cfg)
	cfg.QPS = -1 // no client-side rate limit for the bench's own requests
	kubeconfig, err := WriteKubeconfig(env, dir)
	check(t, err)
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: operator.Scheme()})
	check(t, err)
	tr, err := StartTracker(ctx, c)
	check(t, err)
	start := func(n int) *Operator {
		op, err := StartOperator(bin, kubeconfig, filepath.Join(dir, fmt.Sprintf("operator-%d.log", n)), viaFlag)
		check(t, err)
		t.Cleanup(func() { _ = op.Stop() })
		check(t, op.WaitReady(time.Minute))
		res.OperatorArgs = strings.Join(op.Args, " ")
		return op
	}
	stop := func(op *Operator) {
		check(t, op.Stop())
		lv, errs, err := op.LogSummary(5)
		check(t, err)
		for k, v := range lv {
			res.LogLevels[k] += v
		}
		for _, e := range errs {
			t.Logf("%s: %s", filepath.Base(op.LogPath), e)
		}
	}

	// Latency: one KVStore at a time; after each, the bench client creates
	// copies of the warm-up KVStore's children itself.
	op := start(1)
	const ns = "bench-latency"
	check(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	res.Warmup, _ = createAndWait(ctx, t, c, tr, ns, "warmup", &res.Children)
	template, err := fetch(ctx, c, res.Children.Of(ns, "warmup"))
	check(t, err)
	bg := startOtherCPU(t)
	var children, status, direct []time.Duration
	var kvRefs, childRefs []Ref
	for i := range latencyRuns {
		name := fmt.Sprintf("lat-%02d", i)
		ch, st := createAndWait(ctx, t, c, tr, ns, name, &res.Children)
		children, status = append(children, ch), append(status, st)
		kvRefs, childRefs = append(kvRefs, Ref{"KVStore", ns, name}), append(childRefs, res.Children.Of(ns, name)...)

		began := time.Now()
		var refs []Ref
		for _, o := range template {
			cp := directCopy(o, fmt.Sprintf("d%02d-%s", i, o.GetName()))
			check(t, c.Create(ctx, cp))
			refs = append(refs, Ref{kindOf(o), ns, cp.GetName()})
		}
		wctx, wcancel := context.WithTimeout(ctx, time.Minute)
		seen, err := tr.WaitExist(wctx, refs)
		wcancel()
		check(t, err)
		direct = append(direct, seen.Sub(began))
	}
	res.OtherLatency, err = bg.Stop()
	check(t, err)
	time.Sleep(2 * time.Second) // let trailing reconciles land before counting updates
	res.ToChildren, res.Status, res.Direct = Summarize(children), Summarize(status), Summarize(direct)
	res.ChildUpdates, res.StatusUpdates = tr.Updates(childRefs), tr.Updates(kvRefs)
	t.Logf("latency: children %+v, status %+v, direct %+v", res.ToChildren, res.Status, res.Direct)
	stop(op)
	check(t, deleteAll(ctx, c, ns)) // a fresh operator manages exactly the 100 below

	// Memory: a fresh operator, 100 KVStores back to back.
	op = start(2)
	time.Sleep(2 * time.Second)
	res.Memory = append(res.Memory, memRow(t, op, "started, idle", 0))
	m0, err := op.Metrics()
	check(t, err)
	var all, allChildren []Ref
	for i := range memoryNS {
		check(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-mem-%d", i)}}))
	}
	bg = startOtherCPU(t)
	began := time.Now()
	for i := range memoryStores {
		r := Ref{"KVStore", fmt.Sprintf("bench-mem-%d", i%memoryNS), fmt.Sprintf("kv-%03d", i)}
		check(t, c.Create(ctx, sampleKVStore(t, r.Namespace, r.Name)))
		all, allChildren = append(all, r), append(allChildren, res.Children.Of(r.Namespace, r.Name)...)
	}
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Minute)
	defer wcancel()
	_, err = tr.WaitExist(wctx, allChildren)
	check(t, err)
	done, err := tr.WaitObserved(wctx, all)
	check(t, err)
	res.Settle100 = done.Sub(began)
	time.Sleep(5 * time.Second)
	m1, err := op.Metrics()
	check(t, err)
	res.Memory = append(res.Memory, memRow(t, op, "all 100 reconciled, 5 s later", memoryStores))
	u1 := tr.Updates(allChildren)
	time.Sleep(quietWindow)
	m2, err := op.Metrics()
	check(t, err)
	res.Memory = append(res.Memory, memRow(t, op, fmt.Sprintf("managing 100, after a %.0f s quiet window", quietWindow.Seconds()), memoryStores))
	res.QuietChildUpdates = tr.Updates(allChildren) - u1
	res.OtherMemory, err = bg.Stop()
	check(t, err)
	kvs := `controller="kvstore"`
	res.Reconciles = m1.Sum("controller_runtime_reconcile_total", kvs) - m0.Sum("controller_runtime_reconcile_total", kvs)
	res.ReconcileErrors = m1.Sum("controller_runtime_reconcile_errors_total", kvs) - m0.Sum("controller_runtime_reconcile_errors_total", kvs)
	if n := m1.Sum("controller_runtime_reconcile_time_seconds_count", kvs); n > 0 {
		res.ReconcileMean = time.Duration(m1.Sum("controller_runtime_reconcile_time_seconds_sum", kvs) / n * float64(time.Second))
	}
	res.Requests = diff(m1.By("rest_client_requests_total", "method", "code"), m0.By("rest_client_requests_total", "method", "code"))
	for k, v := range diff(m2.By("rest_client_requests_total", "method"), m1.By("rest_client_requests_total", "method")) {
		if k != "GET" {
			res.QuietWrites += v
		}
	}
	res.StatusUpdates100 = tr.Updates(all)
	stop(op)
	res.LoadEnd = LoadAverage()

	md := res.Markdown()
	t.Log("\n" + md)
	if doc := os.Getenv("KVSTORE_OPERATOR_BENCH_DOC"); doc != "" {
		check(t, mdsection.Operator.WriteFile(doc, md))
	}
}

// createAndWait creates KVStore ns/name and returns the time from the
// Create call returning to all its children existing, and to its status
// being written. The first call (with *ch empty) learns the children
// from what the operator made once the status is written.
func createAndWait(ctx context.Context, t *testing.T, c client.Client, tr *Tracker, ns, name string, ch *Children) (children, status time.Duration) {
	t.Helper()
	kv := sampleKVStore(t, ns, name)
	check(t, c.Create(ctx, kv))
	created := time.Now()
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var seen time.Time
	var err error
	if len(*ch) > 0 {
		seen, err = tr.WaitExist(wctx, ch.Of(ns, name))
		check(t, err)
	}
	observed, err := tr.WaitObserved(wctx, []Ref{{"KVStore", ns, name}})
	check(t, err)
	if len(*ch) == 0 {
		if *ch = ChildrenOf(tr.Owned(kv.UID), name); len(*ch) == 0 {
			t.Fatalf("KVStore %s/%s has its status written but no children", ns, name)
		}
		seen, err = tr.WaitExist(wctx, ch.Of(ns, name))
		check(t, err)
	}
	return seen.Sub(created), observed.Sub(created)
}

// sampleKVStore is config/samples/kvstore_v1_kvstore.yaml named ns/name,
// with the Ingress enabled for host <name>.kv.example.com.
func sampleKVStore(t *testing.T, ns, name string) *kvv1.KVStore {
	b, err := os.ReadFile(filepath.Join(kubetest.Root(), "config", "samples", "kvstore_v1_kvstore.yaml"))
	check(t, err)
	kv := &kvv1.KVStore{}
	check(t, yaml.UnmarshalStrict(b, kv))
	kv.ObjectMeta = metav1.ObjectMeta{Namespace: ns, Name: name}
	kv.Spec.Ingress.Enabled, kv.Spec.Ingress.Host = true, name+".kv.example.com"
	return kv
}

func memRow(t *testing.T, op *Operator, state string, n int) MemRow {
	t.Helper()
	mem, err := procstat.Read(op.Pid)
	check(t, err)
	m, err := op.Metrics()
	check(t, err)
	return MemRow{State: state, Mem: mem, KVStores: n,
		HeapInuse: m.Sum("go_memstats_heap_inuse_bytes"), Goroutines: m.Sum("go_goroutines")}
}

// controlPlaneVersions asks envtest's binaries in dir for their versions.
func controlPlaneVersions(dir string) string {
	version := func(bin string) string {
		out, err := exec.Command(filepath.Join(dir, bin), "--version").Output()
		if err != nil {
			return bin + " (version unknown)"
		}
		first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		return first
	}
	return fmt.Sprintf("kube-apiserver %s, %s, from `%s`", strings.TrimPrefix(version("kube-apiserver"), "Kubernetes "),
		strings.Replace(version("etcd"), "etcd Version:", "etcd", 1), relToRoot(dir))
}

func relToRoot(dir string) string {
	if r, err := filepath.Rel(kubetest.Root(), dir); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return dir
}

func check(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// diff is a - b for every key of a, leaving out zeros.
func diff(a, b map[string]float64) map[string]float64 {
	d := map[string]float64{}
	for k, v := range a {
		if v-b[k] != 0 {
			d[k] = v - b[k]
		}
	}
	return d
}

// The helpers the benchmark's numbers depend on; these run in `make test`.
func TestSummarize(t *testing.T) {
	var ds []time.Duration
	for i := 20; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	got := Summarize(ds)
	want := Stats{N: 20, Min: time.Millisecond, Median: 10 * time.Millisecond, P90: 18 * time.Millisecond, Max: 20 * time.Millisecond}
	if got != want {
		t.Errorf("Summarize = %+v, want %+v", got, want)
	}
}

func TestMetricsSum(t *testing.T) {
	m, err := ParseMetrics(strings.NewReader(`# HELP x
go_memstats_heap_inuse_bytes 1.2e+07
rest_client_requests_total{code="201",host="127.0.0.1:1",method="POST"} 3
rest_client_requests_total{code="200",host="127.0.0.1:1",method="GET"} 5
rest_client_requests_total{code="409",method="POST",host="127.0.0.1:1"} 1
controller_runtime_reconcile_total{controller="kvstore",result="success"} 7
controller_runtime_reconcile_total{controller="other",result="success"} 100
`))
	check(t, err)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"go_memstats_heap_inuse_bytes", nil, 12e6},
		{"rest_client_requests_total", []string{`method="POST"`}, 4},
		{"rest_client_requests_total", nil, 9},
		{"controller_runtime_reconcile_total", []string{`controller="kvstore"`}, 7},
	} {
		if got := m.Sum(c.name, c.labels...); got != c.want {
			t.Errorf("Sum(%s, %v) = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	by := m.By("rest_client_requests_total", "method", "code")
	if want := map[string]float64{"POST 201": 3, "GET 200": 5, "POST 409": 1}; !maps.Equal(by, want) {
		t.Errorf("By(method, code) = %v, want %v", by, want)
	}
}

func TestChildren(t *testing.T) {
	owned := []Ref{{"ConfigMap", "ns", "warmup-config"}, {"Ingress", "ns", "warmup"}, {"Ingress", "ns", "warmup-watch"},
		{"Secret", "ns", "warmup-peer"}, {"StatefulSet", "ns", "warmup"}}
	ch := ChildrenOf(owned, "warmup")
	if got, want := ch.Of("x", "kv"), []Ref{{"ConfigMap", "x", "kv-config"}, {"Ingress", "x", "kv"}, {"Ingress", "x", "kv-watch"},
		{"Secret", "x", "kv-peer"}, {"StatefulSet", "x", "kv"}}; !slices.Equal(got, want) {
		t.Errorf("Of = %v, want %v", got, want)
	}
	if got, want := ch.String(), "ConfigMap `-config`, Ingress `<name>`, Ingress `-watch`, Secret `-peer`, StatefulSet `<name>`"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}

// startOtherCPU starts measuring the CPU used outside this process's tree
// (envtest's kube-apiserver and etcd and the operator are its children).
func startOtherCPU(t *testing.T) *procstat.Background {
	tree, err := procstat.Tree(os.Getpid())
	check(t, err)
	bg, err := procstat.StartBackground(tree...)
	check(t, err)
	return bg
}
