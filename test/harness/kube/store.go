package kube

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	kvv1 "kvstore.dev/kvstore/api/v1"
	"kvstore.dev/kvstore/test/harness"
)

// ReadyTimeout bounds the waits for pods and KVStores: minutes, since a
// loaded 2-core machine starts a three-server store in one or two.
const ReadyTimeout = 10 * time.Minute

// Store is a KVStore in the cluster, as KVStore made it.
type Store struct {
	Namespace, Name string
	Token           string          // the admin token (Secret <name>-auth)
	URL             string          // the client Service from the host: https://<ClusterIP>:8080
	Client          *harness.Client // of URL with Token

	c *Cluster
}

// KVStore applies the KVStore name in namespace ns (server-side apply,
// field manager e2e) with replicas and extraSpecYAML (more fields of its
// spec, as YAML at the spec's level: "config:\n  logLevel: debug\n"), and
// waits (ReadyTimeout) until it is ready: see Store.WaitReady. It needs
// InstallOperator.
func (c *Cluster) KVStore(t testing.TB, ns, name string, replicas int, extraSpecYAML string) *Store {
	t.Helper()
	s := &Store{Namespace: ns, Name: name, c: c}
	s.Apply(t, replicas, extraSpecYAML)
	s.WaitReady(t, replicas)
	kv := s.Get(t)
	var secret corev1.Secret
	if err := c.Client(t).Get(context.Background(), client.ObjectKey{Namespace: ns, Name: kv.Status.AuthSecretName}, &secret); err != nil {
		t.Fatalf("the admin token of KVStore %s/%s: %v", ns, name, err)
	}
	s.Token = string(secret.Data["token"])
	var svc corev1.Service
	if err := c.Client(t).Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &svc); err != nil {
		t.Fatalf("the client Service of KVStore %s/%s: %v", ns, name, err)
	}
	s.URL = fmt.Sprintf("https://%s:8080", svc.Spec.ClusterIP)
	s.Client = harness.NewClient(t, s.URL, s.Token)
	// The pods serve HTTPS with the operator's certificate for the client
	// Service's name: trust <name>-pod-tls's ca.crt and verify that name,
	// whatever address is dialled.
	var podTLS corev1.Secret
	if err := c.Client(t).Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name + "-pod-tls"}, &podTLS); err != nil {
		t.Fatalf("the pods' CA of KVStore %s/%s: %v", ns, name, err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(podTLS.Data["ca.crt"]) {
		t.Fatalf("Secret %s/%s-pod-tls has no ca.crt", ns, name)
	}
	s.Client.HC.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: roots, ServerName: name + "." + ns + ".svc", MinVersion: tls.VersionTLS12}
	return s
}

// Manifest is the KVStore's manifest with replicas and extraSpecYAML.
func (s *Store) Manifest(replicas int, extraSpecYAML string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: kvstore.dev/v1\nkind: KVStore\nmetadata:\n  name: %s\n  namespace: %s\nspec:\n  replicas: %d\n", s.Name, s.Namespace, replicas)
	for _, line := range strings.Split(strings.TrimRight(extraSpecYAML, "\n"), "\n") {
		if line != "" {
			b.WriteString("  " + line + "\n")
		}
	}
	return b.String()
}

// Apply applies the KVStore with replicas and extraSpecYAML, without
// waiting. Fields applied before and not now are removed.
func (s *Store) Apply(t testing.TB, replicas int, extraSpecYAML string) {
	t.Helper()
	s.c.Apply(t, s.Namespace, s.Manifest(replicas, extraSpecYAML))
}

// Get reads the KVStore.
func (s *Store) Get(t testing.TB) *kvv1.KVStore {
	t.Helper()
	kv, err := s.get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

func (s *Store) get(ctx context.Context) (*kvv1.KVStore, error) {
	var kv kvv1.KVStore
	if err := s.c.client.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: s.Name}, &kv); err != nil {
		return nil, fmt.Errorf("KVStore %s/%s: %w", s.Namespace, s.Name, err)
	}
	return &kv, nil
}

// Pods lists the store's pods, by name.
func (s *Store) Pods(t testing.TB) []corev1.Pod {
	t.Helper()
	pods, err := s.pods(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return pods
}

func (s *Store) pods(ctx context.Context) ([]corev1.Pod, error) {
	var list corev1.PodList
	sel := labels.SelectorFromSet(labels.Set{"app.kubernetes.io/name": "kvstore", "app.kubernetes.io/instance": s.Name})
	if err := s.c.client.List(ctx, &list, client.InNamespace(s.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, fmt.Errorf("pods of %s/%s: %w", s.Namespace, s.Name, err)
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	return list.Items, nil
}

// WaitReady waits (ReadyTimeout) until the store is ready with replicas
// servers: the operator observed the current generation; the StatefulSet
// has rolled out (every pod of its update revision); exactly replicas pods
// exist, none terminating, each Ready; the status shows replicas ready,
// Available true, a leader, and replicas members, all voters.
func (s *Store) WaitReady(t testing.TB, replicas int) {
	t.Helper()
	Eventually(t, fmt.Sprintf("KVStore %s/%s ready with %d servers", s.Namespace, s.Name, replicas), ReadyTimeout, func() error {
		return s.ready(context.Background(), replicas)
	})
}

func (s *Store) ready(ctx context.Context, replicas int) error {
	kv, err := s.get(ctx)
	if err != nil {
		return err
	}
	var sts appsv1.StatefulSet
	if err := s.c.client.Get(ctx, client.ObjectKey{Namespace: s.Namespace, Name: s.Name}, &sts); err != nil {
		return fmt.Errorf("StatefulSet: %w", err)
	}
	pods, err := s.pods(ctx)
	if err != nil {
		return err
	}
	var problems []string
	if kv.Status.ObservedGeneration != kv.Generation {
		problems = append(problems, fmt.Sprintf("observed generation %d of %d", kv.Status.ObservedGeneration, kv.Generation))
	}
	if sts.Status.ObservedGeneration != sts.Generation || sts.Status.UpdatedReplicas != int32(replicas) || sts.Status.CurrentRevision != sts.Status.UpdateRevision {
		problems = append(problems, fmt.Sprintf("StatefulSet rolling (replicas %d updated %d, revision %s -> %s)",
			sts.Status.Replicas, sts.Status.UpdatedReplicas, sts.Status.CurrentRevision, sts.Status.UpdateRevision))
	}
	if len(pods) != replicas {
		problems = append(problems, fmt.Sprintf("%d pods", len(pods)))
	}
	for _, p := range pods {
		switch {
		case p.DeletionTimestamp != nil:
			problems = append(problems, p.Name+" terminating")
		case !PodReady(&p):
			problems = append(problems, fmt.Sprintf("%s not ready (%s)", p.Name, PodState(&p)))
		case p.Labels[appsv1.ControllerRevisionHashLabelKey] != sts.Status.UpdateRevision:
			problems = append(problems, p.Name+" of revision "+p.Labels[appsv1.ControllerRevisionHashLabelKey])
		}
	}
	st := kv.Status
	if st.ReadyReplicas != int32(replicas) {
		problems = append(problems, fmt.Sprintf("status: %d ready", st.ReadyReplicas))
	}
	if c := meta.FindStatusCondition(st.Conditions, kvv1.ConditionAvailable); c == nil || c.Status != metav1.ConditionTrue {
		problems = append(problems, fmt.Sprintf("status: Available %s", condString(c)))
	}
	if st.Leader == "" {
		problems = append(problems, "status: no leader")
	}
	voters := 0
	for _, m := range st.Members {
		if m.Suffrage == "Voter" {
			voters++
		}
	}
	if len(st.Members) != replicas || voters != replicas {
		problems = append(problems, fmt.Sprintf("status: members %v", st.Members))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// PodReady reports the pod's Ready condition.
func PodReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// Restarts is the sum of the restart counts of the pod's containers.
func Restarts(p *corev1.Pod) int {
	n := 0
	for _, cs := range p.Status.ContainerStatuses {
		n += int(cs.RestartCount)
	}
	return n
}

// PodState describes the pod in a few words: phase, container states,
// restarts.
func PodState(p *corev1.Pod) string {
	parts := []string{string(p.Status.Phase)}
	for _, cs := range p.Status.ContainerStatuses {
		switch {
		case cs.State.Waiting != nil:
			parts = append(parts, cs.Name+" waiting: "+cs.State.Waiting.Reason)
		case cs.State.Terminated != nil:
			parts = append(parts, cs.Name+" terminated: "+cs.State.Terminated.Reason)
		case cs.State.Running != nil && !cs.Ready:
			parts = append(parts, cs.Name+" running, not ready")
		}
		if cs.RestartCount > 0 {
			parts = append(parts, fmt.Sprintf("%s restarts %d", cs.Name, cs.RestartCount))
		}
	}
	return strings.Join(parts, ", ")
}

func condString(c *metav1.Condition) string {
	if c == nil {
		return "missing"
	}
	return fmt.Sprintf("%s (%s: %s)", c.Status, c.Reason, c.Message)
}

// Client is a controller-runtime client of the cluster (the core kinds and
// KVStore; it can watch), shared by the process's tests.
func (c *Cluster) Client(t testing.TB) client.WithWatch {
	t.Helper()
	if c.client == nil {
		t.Fatal("kube: no client (a Cluster must come from kube.Up)")
	}
	return c.client
}

var scheme = sync.OnceValue(func() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := kvv1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
})

func newClient(kubeconfig string) (client.WithWatch, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 50, 100
	ctrllog.SetLogger(logr.Discard()) // the client logs nothing a test reads
	return client.NewWithWatch(cfg, client.Options{Scheme: scheme()})
}

// Eventually is harness.Eventually for conditions that ask the API server
// or run a command: cond runs at most once a second (Poll), so that many
// tests polling at once do not load the machine they are waiting on.
func Eventually(t testing.TB, what string, timeout time.Duration, cond func() error) time.Duration {
	t.Helper()
	took, err := Poll(timeout, cond)
	if err != nil {
		t.Fatalf("not true after %s: %s (last: %v)", timeout, what, err)
	}
	return took
}

// Poll is harness.Poll with cond run at most once a second.
func Poll(timeout time.Duration, cond func() error) (time.Duration, error) {
	var last time.Time
	err := errors.New("not checked yet")
	return harness.Poll(timeout, func() error {
		if time.Since(last) >= time.Second {
			last, err = time.Now(), cond()
		}
		return err
	})
}
