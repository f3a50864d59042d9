package controller

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kvv1 "kvstore.dev/kvstore/api/v1"
)

// TestRecoveryWithServers runs a recovery from a lost quorum against real
// server processes standing in for pods: a three-server KVStore loses
// demo-0 and demo-1 for good (killed, volumes gone); without a request
// nothing happens; with one, the operator waits for minUnreachable (the
// test moves status.recovery.quorumLostSince back rather than wait),
// picks demo-2, has it recover (it exits and is restarted, as by the
// kubelet), deletes the other pods' claims and pods, and, once they are
// back empty and promoted, reports Succeeded; the keys written before the
// loss are on the recovered store.
func TestRecoveryWithServers(t *testing.T) {
	ps := newServerPods(t, 3)
	kv, ns := ps.kv, ps.kv.Namespace
	// The StatefulSet's claims and pods, as objects (envtest runs neither
	// the StatefulSet controller nor the kubelet).
	for i := range int32(3) {
		pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "data-" + podName(kv, i)},
			Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: podName(kv, i)},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "server", Image: "kvstore"}}}}
		for _, o := range []client.Object{pvc, pod} {
			if err := k8s.Create(ctx, o); err != nil {
				t.Fatal(err)
			}
		}
	}
	rec := &noteRecorder{}
	cc := &checkedCluster{t: t, next: &HTTPClusterClient{BaseURL: ps.url, PodURL: ps.podURL}}
	sts := &appsv1.StatefulSet{}
	wiped := map[int32]bool{}
	step := func() kvv1.KVStoreStatus {
		t.Helper()
		reconcileFresh(t, ns, rec, cc)
		// The pvc-protection controller and the StatefulSet controller: a
		// deleted claim goes, and a new one (empty) is made with its pod.
		for i := range int32(3) {
			pvc := &corev1.PersistentVolumeClaim{}
			err := get(ns, "data-"+podName(kv, i), pvc)
			if err != nil && !apierrors.IsNotFound(err) {
				t.Fatal(err)
			}
			if err == nil && pvc.DeletionTimestamp.IsZero() {
				continue
			}
			if i == 2 {
				t.Fatalf("the survivor's claim was deleted")
			}
			if err == nil {
				pvc.Finalizers = nil
				if err := k8s.Update(ctx, pvc); client.IgnoreNotFound(err) != nil {
					t.Fatal(err)
				}
			}
			fresh := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "data-" + podName(kv, i)}, Spec: pvc.Spec}
			if err := k8s.Create(ctx, fresh); err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatal(err)
			}
			ps.mu.Lock()
			if pr, ok := ps.procs[i]; ok { // its pod goes with the claim
				_ = pr.cmd.Process.Kill()
				<-pr.done
				delete(ps.procs, i)
			}
			delete(ps.dirs, i) // a new, empty volume
			ps.down[i] = false
			wiped[i] = true
			ps.mu.Unlock()
		}
		if err := k8s.Get(ctx, key(ns, "demo"), sts); err != nil {
			t.Fatal(err)
		}
		ps.sync(*sts.Spec.Replicas)
		got := &kvv1.KVStore{}
		if err := k8s.Get(ctx, key(ns, "demo"), got); err != nil {
			t.Fatal(err)
		}
		return got.Status
	}
	until := func(what string, timeout time.Duration, done func(kvv1.KVStoreStatus) bool) kvv1.KVStoreStatus {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for time.Now().Before(deadline) {
			if st := step(); done(st) {
				return st
			}
			<-time.After(300 * time.Millisecond) // the servers replicate, elect, restart meanwhile
		}
		got := &kvv1.KVStore{}
		_ = k8s.Get(ctx, key(ns, "demo"), got)
		t.Fatalf("%s: not reached in %v; status.recovery %+v; events %v", what, timeout, got.Status.Recovery, rec.notes)
		return kvv1.KVStoreStatus{}
	}
	voters := func(st kvv1.KVStoreStatus) (n int) {
		for _, m := range st.Members {
			if m.Suffrage == "Voter" {
				n++
			}
		}
		return n
	}
	until("three voters", 90*time.Second, func(st kvv1.KVStoreStatus) bool { return voters(st) == 3 && st.Leader != "" })

	hc := ps.httpClient()
	do := func(method, url, body string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+ps.adminToken)
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for i := range 10 {
		if code, body := do(http.MethodPut, ps.url(kv)+fmt.Sprintf("/api/v1/kv/k%d", i), "v"); code >= 300 {
			t.Fatalf("put: %d %s", code, body)
		}
	}
	st := until("the commit index tracked", 30*time.Second, func(st kvv1.KVStoreStatus) bool {
		return st.Recovery != nil && st.Recovery.HighestIndexSeen > 0
	})
	t.Logf("highest commit index seen while healthy: %d", st.Recovery.HighestIndexSeen)

	// demo-0 and demo-1 lose their volumes for good and come back empty at
	// once, as the StatefulSet controller recreates deleted pods with new
	// claims: demo-1 asks to join and nobody can admit it; demo-0, the
	// bootstrap node, finds no cluster either and must not start one of
	// its own (the ConfigMap says the cluster formed), or the client
	// Service would lead to an empty leader and the quorum would not be
	// seen lost.
	ps.mu.Lock()
	for _, i := range []int32{0, 1} {
		pr := ps.procs[i]
		_ = pr.cmd.Process.Kill()
		<-pr.done
		delete(ps.procs, i)
		if err := os.RemoveAll(ps.dirs[i]); err != nil {
			t.Fatal(err)
		}
		delete(ps.dirs, i)
	}
	ps.mu.Unlock()
	st = until("the quorum seen lost", 60*time.Second, func(st kvv1.KVStoreStatus) bool {
		return st.Recovery != nil && st.Recovery.QuorumLostSince != nil
	})
	if cm := (&corev1.ConfigMap{}); get(ns, "demo-config", cm) != nil || cm.Data[bootstrapAllowedFile] != "false" {
		t.Errorf("ConfigMap %s = %q after the cluster formed, want \"false\"", bootstrapAllowedFile, cm.Data[bootstrapAllowedFile])
	}
	// Without a request, nothing, however long the quorum is lost.
	backdate := func() {
		t.Helper()
		got := &kvv1.KVStore{}
		if err := k8s.Get(ctx, key(ns, "demo"), got); err != nil {
			t.Fatal(err)
		}
		base := got.DeepCopy()
		got.Status.Recovery.QuorumLostSince = &metav1.Time{Time: time.Now().Add(-time.Hour).Truncate(time.Second)}
		if err := k8s.Status().Patch(ctx, got, client.MergeFrom(base)); err != nil {
			t.Fatal(err)
		}
	}
	backdate()
	for range 3 {
		if st = step(); st.Recovery.Phase != "" || meta.FindStatusCondition(st.Conditions, kvv1.ConditionRecovering) != nil {
			t.Fatalf("recovery without a request: %+v", st.Recovery)
		}
		// The empty demo-0 runs, asking to join, and takes no write (one
		// that bootstrapped would lead a cluster of its own and take it).
		ps.mu.Lock()
		pr, running := ps.procs[0]
		running = running && !pr.exited()
		ps.mu.Unlock()
		if !running {
			t.Fatal("demo-0 is not running while the quorum is lost")
		}
		if code, body := do(http.MethodPut, ps.podURL(kv, "demo-0")+"/api/v1/kv/split-brain", "x"); code >= 200 && code < 300 {
			t.Fatalf("the empty demo-0 took a write while the quorum is lost: %d %s", code, body)
		}
	}

	// A request with the wrong uid is refused.
	patch(t, kv, func(k *kvv1.KVStore) {
		k.Spec.Recovery = &kvv1.RecoverySpec{ForceNewClusterFrom: &kvv1.ForceNewCluster{ConfirmUID: "not-the-uid"}}
	})
	st = until("refused", 20*time.Second, func(st kvv1.KVStoreStatus) bool {
		return st.Recovery != nil && st.Recovery.Phase == kvv1.RecoveryRefused
	})
	if !strings.Contains(st.Recovery.Message, "confirmUID") {
		t.Errorf("refusal %q does not name the field", st.Recovery.Message)
	}

	// The confirmed request: a minute of loss is required, an hour is seen.
	got := &kvv1.KVStore{}
	if err := k8s.Get(ctx, key(ns, "demo"), got); err != nil {
		t.Fatal(err)
	}
	patch(t, kv, func(k *kvv1.KVStore) {
		k.Spec.Recovery = &kvv1.RecoverySpec{ForceNewClusterFrom: &kvv1.ForceNewCluster{ConfirmUID: string(got.UID), MinUnreachable: &metav1.Duration{Duration: time.Minute}}}
	})
	backdate()
	st = until("recovering from demo-2", 20*time.Second, func(st kvv1.KVStoreStatus) bool {
		return st.Recovery != nil && st.Recovery.Phase == kvv1.RecoveryRecovering
	})
	if r := st.Recovery; r.Survivor != "demo-2" || r.LastLogIndex == 0 || r.PossiblyLost == "" || r.StartTime == nil {
		t.Errorf("recovery recorded as %+v, want demo-2 with its log position and what may be lost", r)
	}
	if c := meta.FindStatusCondition(st.Conditions, kvv1.ConditionRecovering); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("Recovering condition %+v, want True", c)
	}
	st = until("succeeded", 120*time.Second, func(st kvv1.KVStoreStatus) bool {
		return st.Recovery != nil && (st.Recovery.Phase == kvv1.RecoverySucceeded || st.Recovery.Phase == kvv1.RecoveryFailed)
	})
	if st.Recovery.Phase != kvv1.RecoverySucceeded || voters(st) != 3 || st.Leader == "" {
		t.Fatalf("recovery ended %+v with members %+v; events %v", st.Recovery, st.Members, rec.notes)
	}
	if !wiped[0] || !wiped[1] {
		t.Errorf("claims deleted for %v, want demo-0 and demo-1", wiped)
	}
	for _, i := range []int32{0, 1} {
		if err := get(ns, podName(kv, i), &corev1.Pod{}); !apierrors.IsNotFound(err) {
			t.Errorf("pod %s of the lost cluster not deleted: %v", podName(kv, i), err)
		}
	}
	if err := get(ns, podName(kv, 2), &corev1.Pod{}); err != nil {
		t.Errorf("the survivor's pod: %v", err)
	}
	for i := range 10 {
		if code, body := do(http.MethodGet, ps.url(kv)+fmt.Sprintf("/api/v1/kv/k%d", i), ""); code != http.StatusOK {
			t.Errorf("k%d after the recovery: %d %s", i, code, body)
		}
	}
	if code, body := do(http.MethodPut, ps.url(kv)+"/api/v1/kv/after", "v"); code >= 300 {
		t.Errorf("write after the recovery: %d %s", code, body)
	}
	// Carried out once: the request stays, nothing more happens.
	for range 3 {
		if st = step(); st.Recovery.Phase != kvv1.RecoverySucceeded {
			t.Fatalf("after success: %+v", st.Recovery)
		}
	}
	t.Logf("recovery: %+v", st.Recovery)
}

// TestRecoveryRequestValidation: the API server refuses a recovery request
// without a confirmation or with a minUnreachable under 30s, naming the
// field, and takes one of 30s.
func TestRecoveryRequestValidation(t *testing.T) {
	ns := newNamespace(t)
	cases := map[string]struct {
		req  kvv1.ForceNewCluster
		want string // "" for accepted
	}{
		"no confirmation":      {kvv1.ForceNewCluster{}, "spec.recovery.forceNewClusterFrom.confirmUID"},
		"10s":                  {kvv1.ForceNewCluster{ConfirmUID: "u", MinUnreachable: &metav1.Duration{Duration: 10 * time.Second}}, "spec.recovery.forceNewClusterFrom.minUnreachable must be at least 30s"},
		"30s":                  {kvv1.ForceNewCluster{ConfirmUID: "u", MinUnreachable: &metav1.Duration{Duration: 30 * time.Second}}, ""},
		"default":              {kvv1.ForceNewCluster{ConfirmUID: "u", Member: "x-2"}, ""},
		"member name too long": {kvv1.ForceNewCluster{ConfirmUID: "u", Member: strings.Repeat("a", 64)}, "spec.recovery.forceNewClusterFrom.member"},
	}
	i := 0
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			i++
			kv := &kvv1.KVStore{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("x%d", i), Namespace: ns},
				Spec: kvv1.KVStoreSpec{Recovery: &kvv1.RecoverySpec{ForceNewClusterFrom: &tc.req}}}
			err := k8s.Create(ctx, kv)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("created; want refused with %q", tc.want)
			case tc.want != "" && (!apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v\nwant Invalid containing %q", err, tc.want)
			}
		})
	}
}
