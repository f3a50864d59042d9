package controller

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	kvv1 "kvstore.dev/kvstore/api/v1"
	"kvstore.dev/kvstore/internal/kubetest"
	"kvstore.dev/kvstore/test/harness"
)

// The envtest control plane and the manager running the reconciler, shared
// by the tests of this package; each test works in its own namespace.
var (
	testEnv    *envtest.Environment
	restConfig *rest.Config
	k8s        client.Client // uncached, for the tests' own reads and writes
	mgrClient  client.Client // the manager's (cached) client
	scheme     *runtime.Scheme
	testOpts   = BuildOptions{DefaultImage: "kvstore/kvstore:test", ClusterDomain: "cluster.local"}
)

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	env, err := kubetest.Environment("testdata/crds")
	if err != nil {
		return kubetest.MissingAssets(err)
	}
	testEnv = env
	if restConfig, err = env.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "start envtest:", err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop envtest:", err)
		}
	}()
	scheme = runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		panic(err)
	}
	if err := kvv1.AddToScheme(scheme); err != nil {
		panic(err)
	}
	if k8s, err = client.New(restConfig, client.Options{Scheme: scheme}); err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		return 1
	}
	ctrl.SetLogger(logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:  scheme,
		Metrics: metricsserver.Options{BindAddress: "0"},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
		return 1
	}
	mgrClient = mgr.GetClient()
	// User Secrets are not watched: recheck them often, so a change shows within the tests' deadlines.
	r := &Reconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder(FieldOwner), Options: testOpts, Recheck: 200 * time.Millisecond}
	if err := r.SetupWithManager(mgr); err != nil {
		fmt.Fprintln(os.Stderr, "setup:", err)
		return 1
	}
	br := &BackupReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: mgr.GetEventRecorder(FieldOwner), Options: testOpts,
		Source: &HTTPSnapshotSource{Options: testOpts, ServiceURL: backupServiceURL, PodURL: backupPodURL}}
	if err := br.SetupWithManager(mgr); err != nil {
		fmt.Fprintln(os.Stderr, "setup backups:", err)
		return 1
	}
	if err := (&BackupScheduler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder(FieldOwner)}).SetupWithManager(mgr); err != nil {
		fmt.Fprintln(os.Stderr, "setup backup schedule:", err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "manager stopped:", err)
		}
	}()
	code := m.Run()
	cancel()
	wg.Wait()
	return code
}

var nsCounter atomic.Int32

// newNamespace creates a namespace for one test.
func newNamespace(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("t%d-%d", nsCounter.Add(1), time.Now().UnixNano()%1e6)
	if err := k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	return name
}

// eventually polls cond until it returns nil, for up to 20 s.
func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	harness.Eventually(t, what, 20*time.Second, cond)
}

// countingRecorder counts events; it records nothing.
type countingRecorder struct{ n atomic.Int32 }

func (c *countingRecorder) Eventf(runtime.Object, runtime.Object, string, string, string, string, ...any) {
	c.n.Add(1)
}

var _ events.EventRecorder = (*countingRecorder)(nil)

// countingClient counts the writes that go through it.
type countingClient struct {
	client.Client
	writes atomic.Int32
	log    []string
	mu     sync.Mutex
}

func (c *countingClient) note(verb string, o any) {
	c.writes.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.log = append(c.log, fmt.Sprintf("%s %T", verb, o))
}

func (c *countingClient) Create(ctx context.Context, o client.Object, opts ...client.CreateOption) error {
	c.note("create", o)
	return c.Client.Create(ctx, o, opts...)
}

func (c *countingClient) Update(ctx context.Context, o client.Object, opts ...client.UpdateOption) error {
	c.note("update", o)
	return c.Client.Update(ctx, o, opts...)
}

func (c *countingClient) Patch(ctx context.Context, o client.Object, p client.Patch, opts ...client.PatchOption) error {
	c.note("patch", o)
	return c.Client.Patch(ctx, o, p, opts...)
}

func (c *countingClient) Apply(ctx context.Context, o runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
	c.note("apply", o)
	return c.Client.Apply(ctx, o, opts...)
}

func (c *countingClient) Delete(ctx context.Context, o client.Object, opts ...client.DeleteOption) error {
	c.note("delete", o)
	return c.Client.Delete(ctx, o, opts...)
}

func (c *countingClient) DeleteAllOf(ctx context.Context, o client.Object, opts ...client.DeleteAllOfOption) error {
	c.note("deleteAllOf", o)
	return c.Client.DeleteAllOf(ctx, o, opts...)
}

func (c *countingClient) Status() client.SubResourceWriter {
	return &countingStatus{SubResourceWriter: c.Client.Status(), c: c}
}

func (c *countingClient) SubResource(sub string) client.SubResourceClient {
	return &countingSub{SubResourceClient: c.Client.SubResource(sub), c: c}
}

type countingStatus struct {
	client.SubResourceWriter
	c *countingClient
}

func (s *countingStatus) Update(ctx context.Context, o client.Object, opts ...client.SubResourceUpdateOption) error {
	s.c.note("status update", o)
	return s.SubResourceWriter.Update(ctx, o, opts...)
}

func (s *countingStatus) Patch(ctx context.Context, o client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
	s.c.note("status patch", o)
	return s.SubResourceWriter.Patch(ctx, o, p, opts...)
}

func (s *countingStatus) Create(ctx context.Context, o client.Object, sub client.Object, opts ...client.SubResourceCreateOption) error {
	s.c.note("status create", o)
	return s.SubResourceWriter.Create(ctx, o, sub, opts...)
}

func (s *countingStatus) Apply(ctx context.Context, o runtime.ApplyConfiguration, opts ...client.SubResourceApplyOption) error {
	s.c.note("status apply", o)
	return s.SubResourceWriter.Apply(ctx, o, opts...)
}

type countingSub struct {
	client.SubResourceClient
	c *countingClient
}

func (s *countingSub) Update(ctx context.Context, o client.Object, opts ...client.SubResourceUpdateOption) error {
	s.c.note("subresource update", o)
	return s.SubResourceClient.Update(ctx, o, opts...)
}

func (s *countingSub) Patch(ctx context.Context, o client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
	s.c.note("subresource patch", o)
	return s.SubResourceClient.Patch(ctx, o, p, opts...)
}

func (s *countingSub) Create(ctx context.Context, o client.Object, sub client.Object, opts ...client.SubResourceCreateOption) error {
	s.c.note("subresource create", o)
	return s.SubResourceClient.Create(ctx, o, sub, opts...)
}

func (s *countingSub) Apply(ctx context.Context, o runtime.ApplyConfiguration, opts ...client.SubResourceApplyOption) error {
	s.c.note("subresource apply", o)
	return s.SubResourceClient.Apply(ctx, o, opts...)
}
