//go:build kube

package kube

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kvstore.dev/kvstore/test/harness/kube"
)

// testScale: 3 → 5 → 3 → 1 → 3 servers under continuous writes; after
// each step every pod is Ready and a voter; in the end the keys written
// first are intact and no acknowledged write is lost. The claims are kept
// on scale-down (the default), so the last step brings back two servers
// with the Raft state of a configuration that no longer has them.
func testScale(t *testing.T, k *kube.Cluster) {
	s := newStore(t, k, "scale", 3, small)
	want := putAll(t, s, "base/", 10)
	w := startWriters(t, s)
	w.WaitMore(t, 20, kube.ReadyTimeout)
	for _, n := range []int{5, 3, 1, 3} {
		start := time.Now()
		s.Apply(t, n, small)
		s.WaitReady(t, n)
		t.Logf("scaled to %d: ready in %s; writers so far: %d acknowledged, failed %v", n, time.Since(start).Round(time.Second), w.Count(), w.Failed())
		w.WaitMore(t, 20, kube.ReadyTimeout)
	}
	stopAndVerify(t, s, w)
	checkAll(t, s, want)
}

// testRollingUpdate: a config change (the log level) and then an image
// change (the same image under a second tag) under continuous writes:
// every pod is replaced, never more than one unavailable at a time (a
// watch on the pods sees every transition), and the writers see only
// retriable failures and lose no acknowledged write.
func testRollingUpdate(t *testing.T, k *kube.Cluster) {
	s := newStore(t, k, "rolling", 3, small+"config:\n  logLevel: info\n")
	w := startWriters(t, s)
	w.WaitMore(t, 50, kube.ReadyTimeout)
	steps := []struct {
		name, spec string
		check      func(*corev1.Pod) error
	}{
		{"config", "config:\n  logLevel: debug\n", nil},
		{"image", "config:\n  logLevel: debug\nimage: " + kube.ServerImageB + "\n", func(p *corev1.Pod) error {
			if img := p.Spec.Containers[0].Image; img != kube.ServerImageB {
				return fmt.Errorf("pod %s runs %s, want %s", p.Name, img, kube.ServerImageB)
			}
			return nil
		}},
	}
	for _, step := range steps {
		before := map[string]string{}
		for _, p := range s.Pods(t) {
			before[p.Name] = string(p.UID)
		}
		pw := watchPods(t, k, s, 3)
		start := time.Now()
		s.Apply(t, 3, small+step.spec)
		s.WaitReady(t, 3)
		seen := pw.stop()
		t.Logf("%s change rolled out in %s; the pods went: %s", step.name, time.Since(start).Round(time.Second), strings.Join(seen.events, "; "))
		if seen.maxUnavailable > 1 {
			t.Errorf("%s change: %d pods unavailable at once, want at most 1 (%s)", step.name, seen.maxUnavailable, seen.worst)
		}
		for _, p := range s.Pods(t) {
			if string(p.UID) == before[p.Name] {
				t.Errorf("%s change: pod %s was not replaced", step.name, p.Name)
			}
			if step.check != nil {
				if err := step.check(&p); err != nil {
					t.Errorf("%s change: %v", step.name, err)
				}
			}
		}
		w.WaitMore(t, 20, kube.ReadyTimeout)
	}
	stopAndVerify(t, s, w)
}

// podWatch follows the store's pods through a watch and records how many
// were unavailable (missing, unready or terminating) at once.
type podWatch struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu   sync.Mutex
	seen podsSeen
}

type podsSeen struct {
	maxUnavailable int
	worst          string   // the pods' states when maxUnavailable was reached
	events         []string // "+12.3s rolling-2 terminating", in order
}

func watchPods(t *testing.T, k *kube.Cluster, s *kube.Store, replicas int) *podWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sel := client.MatchingLabels{"app.kubernetes.io/instance": s.Name}
	// The state now, then every change after it.
	var list corev1.PodList
	if err := k.Client(t).List(ctx, &list, client.InNamespace(s.Namespace), sel); err != nil {
		cancel()
		t.Fatal(err)
	}
	state := map[string]string{} // pod name -> "ready", "unready", "terminating"
	for i := range list.Items {
		state[list.Items[i].Name] = podStateWord(&list.Items[i])
	}
	wi, err := k.Client(t).Watch(ctx, &corev1.PodList{}, client.InNamespace(s.Namespace), sel,
		&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	w := &podWatch{cancel: cancel, done: make(chan struct{})}
	start := time.Now()
	go func() {
		defer close(w.done)
		defer wi.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-wi.ResultChan():
				if !ok {
					return
				}
				p, ok := ev.Object.(*corev1.Pod)
				if !ok {
					continue
				}
				now := podStateWord(p)
				if ev.Type == watch.Deleted {
					now = ""
				}
				if state[p.Name] == now {
					continue
				}
				if now == "" {
					delete(state, p.Name)
				} else {
					state[p.Name] = now
				}
				w.record(replicas, state, fmt.Sprintf("+%.1fs %s %s", time.Since(start).Seconds(), p.Name, orGone(now)))
			}
		}
	}()
	t.Cleanup(func() { w.stop() })
	return w
}

func (w *podWatch) record(replicas int, state map[string]string, event string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen.events = append(w.seen.events, event)
	unavailable := replicas
	var states []string
	for name, s := range state {
		if s == "ready" {
			unavailable--
		}
		states = append(states, name+" "+s)
	}
	sort.Strings(states)
	if unavailable > w.seen.maxUnavailable {
		w.seen.maxUnavailable, w.seen.worst = unavailable, strings.Join(states, ", ")
	}
}

// stop ends the watch and returns what it saw.
func (w *podWatch) stop() podsSeen {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen
}

func podStateWord(p *corev1.Pod) string {
	switch {
	case p.DeletionTimestamp != nil:
		return "terminating"
	case kube.PodReady(p):
		return "ready"
	}
	return "unready"
}

func orGone(s string) string {
	if s == "" {
		return "gone"
	}
	return s
}
