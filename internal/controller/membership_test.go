package controller

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kvv1 "kvstore.dev/kvstore/api/v1"
	"kvstore.dev/kvstore/test/harness"
	"kvstore.dev/kvstore/wire"
)

// pods stands in for the StatefulSet controller and the kubelet, which
// envtest does not run: it starts a kvstore server process per ordinal,
// configured as the StatefulSet's pod template configures a pod, but on
// loopback addresses.
type pods struct {
	t          *testing.T
	bin        string
	kv         *kvv1.KVStore
	adminToken string
	peerToken  string
	mu         sync.Mutex
	procs      map[int32]*podProc
	// dirs are the pods' volumes, kept across scale down and up (the
	// StatefulSet's retained PVCs); nil gives every start a new one.
	dirs map[int32]string
	// down are the ordinals whose node is gone: sync does not start them.
	down map[int32]bool
	// configDir is the ConfigMap volume as the kubelet keeps it (only the
	// bootstrap-allowed key: the rest is passed as flags), rewritten at
	// every sync.
	configDir string
}

type podProc struct {
	name, api, peer string
	cmd             *exec.Cmd
	out             *bytes.Buffer
	done            chan struct{}
}

// sync makes the running processes match the StatefulSet's replicas.
func (p *pods) sync(replicas int32) {
	p.t.Helper()
	p.writeConfigMap()
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := int32(0); i < replicas; i++ {
		pr, ok := p.procs[i]
		if ok && pr.exited() && !p.down[i] {
			ok = false // the kubelet restarts the container
		}
		if !ok && !p.down[i] {
			p.procs[i] = p.start(i)
		}
	}
	for i, pr := range p.procs {
		if i >= replicas {
			_ = pr.cmd.Process.Signal(syscall.SIGTERM)
			<-pr.done
			delete(p.procs, i)
		}
	}
}

// newServerPods creates the sample KVStore "demo" with replicas servers
// and no Ingress in a new namespace, waits for its children, and returns
// the stand-in pods for it, with the tokens of its Secrets and kept
// volumes; none runs before the first sync.
func newServerPods(t *testing.T, replicas int32) *pods {
	t.Helper()
	bin := harness.Binary(t, "server")
	ns := newNamespace(t)
	kv := sample(t, ns)
	kv.Spec.Replicas = ptr(replicas)
	kv.Spec.Ingress = kvv1.IngressSpec{}
	create(t, kv)
	waitChildren(t, kv)
	secret := func(name string) string {
		s := &corev1.Secret{}
		if err := get(ns, name, s); err != nil {
			t.Fatal(err)
		}
		return string(s.Data[AuthTokenKey])
	}
	return &pods{t: t, bin: bin, kv: kv, adminToken: secret("demo-auth"), peerToken: secret("demo-peer"),
		procs: map[int32]*podProc{}, dirs: map[int32]string{}, down: map[int32]bool{}}
}

// reconcileFresh reconciles ns/demo once with a new Reconciler, as after an
// operator restart, again while the write of the status loses a conflict
// (the optimistic lock of writeStatus).
func reconcileFresh(t *testing.T, ns string, rec *noteRecorder, cc *checkedCluster) {
	t.Helper()
	r := &Reconciler{Client: mgrClient, Recorder: rec, Options: testOpts, Cluster: cc}
	for {
		cc.calls = 0
		_, err := r.Reconcile(ctx, reconcile.Request{NamespacedName: key(ns, "demo")})
		if err == nil {
			return
		}
		if !strings.Contains(err.Error(), "the object has been modified") {
			t.Fatalf("reconcile: %v", err)
		}
	}
}

func (p *pods) start(i int32) *podProc {
	t := p.t
	pr := &podProc{name: podName(p.kv, i), api: harness.FreeAddr(t), peer: harness.FreeAddr(t), out: &bytes.Buffer{}, done: make(chan struct{})}
	join := pr.peer
	for j := int32(0); j < 10; j++ { // the headless Service, which reaches any member
		if other, ok := p.procs[j]; ok && j != i && !other.exited() {
			join = other.peer
			break
		}
	}
	dir := filepath.Join(t.TempDir(), "data")
	if p.dirs != nil {
		if d, ok := p.dirs[i]; ok {
			dir = d
		}
		p.dirs[i] = dir
	}
	// The pod's Secret volumes, as the kubelet would write them now.
	tlsDir, tokDir := p.secretDir(p.kv.Name+"-pod-tls"), p.secretDir(p.kv.Name+"-tokens")
	pr.cmd = exec.Command(p.bin, "serve", "--listen", pr.api, "--debug-listen", "off", "--data-dir", dir,
		"--node-id", pr.name, "--peer-listen", pr.peer, "--peer-advertise", pr.peer,
		"--bootstrap-node", podName(p.kv, 0), "--bootstrap-allowed-file", filepath.Join(p.configDir, bootstrapAllowedFile),
		"--join", join, "--join-as", "nonvoter",
		"--cluster-name", clusterName(p.kv),
		"--peer-tls-cert", filepath.Join(tlsDir, pr.name+".crt"), "--peer-tls-key", filepath.Join(tlsDir, pr.name+".key"),
		"--peer-tls-ca", filepath.Join(tlsDir, caCertKey),
		"--tls-cert-file", filepath.Join(tlsDir, corev1.TLSCertKey), "--tls-key-file", filepath.Join(tlsDir, corev1.TLSPrivateKeyKey),
		"--tokens-file", filepath.Join(tokDir, tokensFile))
	pr.cmd.Env = append(os.Environ(), "KVSTORE_ADMIN_TOKEN="+p.adminToken, "KVSTORE_PEER_TOKEN="+p.peerToken)
	pr.cmd.Stdout, pr.cmd.Stderr = pr.out, pr.out
	if err := pr.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = pr.cmd.Wait(); close(pr.done) }()
	t.Cleanup(func() {
		_ = pr.cmd.Process.Kill()
		<-pr.done
	})
	return pr
}

func (pr *podProc) exited() bool {
	select {
	case <-pr.done:
		return true
	default:
		return false
	}
}

// podURL is pod's own address (its name under the headless Service).
func (p *pods) podURL(_ *kvv1.KVStore, pod string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pr, ok := p.procs[ordinal(p.kv, pod)]; ok && !pr.exited() {
		return "https://" + pr.api
	}
	return "https://127.0.0.1:1"
}

// writeConfigMap writes the config ConfigMap's bootstrap-allowed key into
// configDir (made on first use), as the kubelet updates a ConfigMap volume;
// a missing ConfigMap leaves the file as it was.
func (p *pods) writeConfigMap() {
	p.t.Helper()
	if p.configDir == "" {
		p.configDir = p.t.TempDir()
	}
	cm := &corev1.ConfigMap{}
	if err := get(p.kv.Namespace, p.kv.Name+"-config", cm); err != nil {
		return
	}
	if err := os.WriteFile(filepath.Join(p.configDir, bootstrapAllowedFile), []byte(cm.Data[bootstrapAllowedFile]), 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// secretDir writes the Secret name's data into a new directory, one file
// per key, as a Secret volume holds it.
func (p *pods) secretDir(name string) string {
	p.t.Helper()
	s := &corev1.Secret{}
	if err := get(p.kv.Namespace, name, s); err != nil {
		p.t.Fatalf("the pods' Secret %s: %v", name, err)
	}
	dir := p.t.TempDir()
	for k, v := range s.Data {
		if err := os.WriteFile(filepath.Join(dir, k), v, 0o600); err != nil {
			p.t.Fatal(err)
		}
	}
	return dir
}

// httpClient is a client of the pods' API over HTTPS, trusting the CA
// bundle of <name>-pod-tls and verifying the client Service's name, as the
// operator and the Ingress do.
func (p *pods) httpClient() *http.Client {
	p.t.Helper()
	s := &corev1.Secret{}
	if err := get(p.kv.Namespace, p.kv.Name+"-pod-tls", s); err != nil {
		p.t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(s.Data[caCertKey]) {
		p.t.Fatal("no CA in the pods' bundle")
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: apiServerName(p.kv), MinVersion: tls.VersionTLS12}}}
}

// url is the client Service: any running pod (the lowest ordinal).
func (p *pods) url(*kvv1.KVStore) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := int32(0); i < 10; i++ {
		if pr, ok := p.procs[i]; ok && !pr.exited() {
			return "https://" + pr.api
		}
	}
	return "https://127.0.0.1:1"
}

// noteRecorder keeps event reasons and notes.
type noteRecorder struct {
	mu    sync.Mutex
	notes []string
}

func (r *noteRecorder) Eventf(_ runtime.Object, _ runtime.Object, _, reason, _, note string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notes = append(r.notes, reason+": "+fmt.Sprintf(note, args...))
}

// checkedCluster passes the reconciler's calls on to the servers and fails
// the test when a membership call breaks what the operator guarantees: at
// most one per reconcile (calls counts them since the test reset it), a
// promotion only of a non-voter that had caught up in the view that
// reconcile observed, a removal only of the member with the highest
// ordinal.
type checkedCluster struct {
	t     *testing.T
	next  ClusterClient
	view  wire.ClusterStatus // the last Status answer
	calls int
}

func (c *checkedCluster) Status(ctx context.Context, kv *kvv1.KVStore, a ServerAccess) (wire.ClusterStatus, error) {
	v, err := c.next.Status(ctx, kv, a)
	c.view = v
	return v, err
}

func (c *checkedCluster) AddMember(ctx context.Context, kv *kvv1.KVStore, a ServerAccess, id, address string, voter bool) error {
	c.call("AddMember " + id)
	var commit uint64
	for _, m := range c.view.Members {
		if m.ID == c.view.LeaderID && m.Status != nil {
			commit = m.Status.CommitIndex
		}
	}
	i := slices.IndexFunc(c.view.Members, func(m wire.Member) bool { return m.ID == id })
	if !voter || i < 0 || c.view.Members[i].Suffrage == wire.SuffrageVoter || c.view.Members[i].Status == nil ||
		commit == 0 || c.view.Members[i].Status.AppliedIndex+catchUpSlack < commit {
		c.t.Errorf("AddMember(%s, voter=%v) is no promotion of a caught-up non-voter in the observed view %+v", id, voter, c.view)
	}
	return c.next.AddMember(ctx, kv, a, id, address, voter)
}

func (c *checkedCluster) RemoveMember(ctx context.Context, kv *kvv1.KVStore, a ServerAccess, id string) error {
	c.call("RemoveMember " + id)
	for _, m := range c.view.Members {
		if ordinal(kv, m.ID) > ordinal(kv, id) {
			c.t.Errorf("RemoveMember(%s) while %s, of a higher ordinal, is a member", id, m.ID)
		}
	}
	return c.next.RemoveMember(ctx, kv, a, id)
}

func (c *checkedCluster) PodStatus(ctx context.Context, kv *kvv1.KVStore, a ServerAccess, pod string) (wire.ClusterStatus, error) {
	return c.next.PodStatus(ctx, kv, a, pod)
}

func (c *checkedCluster) Recover(ctx context.Context, kv *kvv1.KVStore, a ServerAccess, pod string, req wire.RecoverRequest) (wire.RecoverResponse, error) {
	c.call("Recover " + pod)
	return c.next.Recover(ctx, kv, a, pod, req)
}

func (c *checkedCluster) call(what string) {
	if c.calls++; c.calls > 1 {
		c.t.Errorf("%s: membership call %d of one reconcile, want at most one", what, c.calls)
	}
}

// TestMembershipSteps scales a KVStore 1 → 3 → 1 → 3 against real server
// processes: new servers join as non-voters and are promoted one at a
// time; on the way down the highest ordinals leave the Raft configuration
// before the StatefulSet shrinks; back up on the kept volumes the returning
// servers are re-admitted and promoted. Which non-voter is promoted first
// depends on which catches up first (nextStep promotes the lowest caught-up
// ordinal; TestNextStep pins that rule), so the order is not asserted here:
// checkedCluster asserts the rules of every membership call. Each step runs on a fresh Reconciler, as
// after an operator restart, so nothing is carried between steps but what
// the cluster and the API server hold.
func TestMembershipSteps(t *testing.T) {
	ps := newServerPods(t, 1)
	kv, ns := ps.kv, ps.kv.Namespace
	rec := &noteRecorder{}
	sts := &appsv1.StatefulSet{}
	cc := &checkedCluster{t: t, next: &HTTPClusterClient{BaseURL: ps.url}}
	// step runs one reconcile with a new Reconciler, then plays the
	// StatefulSet controller.
	step := func() (replicas int32, status kvv1.KVStoreStatus) {
		t.Helper()
		reconcileFresh(t, ns, rec, cc)
		if err := k8s.Get(ctx, key(ns, "demo"), sts); err != nil {
			t.Fatal(err)
		}
		ps.sync(*sts.Spec.Replicas)
		got := &kvv1.KVStore{}
		if err := k8s.Get(ctx, key(ns, "demo"), got); err != nil {
			t.Fatal(err)
		}
		return *sts.Spec.Replicas, got.Status
	}
	voters := func(st kvv1.KVStoreStatus) (n int) {
		for _, m := range st.Members {
			if m.Suffrage == "Voter" {
				n++
			}
		}
		return n
	}
	// until steps until done holds, checking invariant after every step.
	until := func(what string, done func(int32, kvv1.KVStoreStatus) bool, invariant func(int32, kvv1.KVStoreStatus)) kvv1.KVStoreStatus {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			n, st := step()
			invariant(n, st)
			if done(n, st) {
				return st
			}
			<-time.After(200 * time.Millisecond) // the servers replicate meanwhile
		}
		t.Fatalf("%s: not reached in 60s; events %v", what, rec.notes)
		return kvv1.KVStoreStatus{}
	}

	until("one voting server", func(_ int32, st kvv1.KVStoreStatus) bool {
		return voters(st) == 1 && st.Leader == "demo-0"
	}, func(int32, kvv1.KVStoreStatus) {})

	patch(t, kv, func(k *kvv1.KVStore) { k.Spec.Replicas = ptr(int32(3)) })
	lastVoters := 1
	st := until("three voters", func(n int32, st kvv1.KVStoreStatus) bool {
		return n == 3 && voters(st) == 3 && len(st.Members) == 3
	}, func(_ int32, st kvv1.KVStoreStatus) {
		if v := voters(st); v > lastVoters+1 {
			t.Fatalf("%d voters after one step (was %d): promotions must come one at a time", v, lastVoters)
		} else if v > lastVoters {
			lastVoters = v
		}
	})
	if st.Members[1].Name != "demo-1" || st.Members[2].Name != "demo-2" {
		t.Errorf("members %+v", st.Members)
	}
	promoted := slices.DeleteFunc(slices.Clone(rec.notes), func(s string) bool { return !strings.HasPrefix(s, "MemberPromoted") })
	slices.Sort(promoted) // by name: the order is the order of catching up
	if len(promoted) != 2 || !strings.Contains(promoted[0], "demo-1") || !strings.Contains(promoted[1], "demo-2") {
		t.Errorf("promotions %v, want demo-1 and demo-2 once each", promoted)
	}

	patch(t, kv, func(k *kvv1.KVStore) { k.Spec.Replicas = ptr(int32(1)) })
	until("one server again", func(n int32, st kvv1.KVStoreStatus) bool {
		return n == 1 && len(st.Members) == 1 && st.Members[0].Name == "demo-0"
	}, func(n int32, st kvv1.KVStoreStatus) {
		// The StatefulSet never drops a pod that is still a member.
		for _, m := range st.Members {
			if o := ordinal(kv, m.Name); o >= n {
				t.Fatalf("StatefulSet at %d replicas while %s is still a member", n, m.Name)
			}
		}
	})
	removed := slices.DeleteFunc(slices.Clone(rec.notes), func(s string) bool { return !strings.HasPrefix(s, "MemberRemoved") })
	if len(removed) != 2 || !strings.Contains(removed[0], "demo-2") || !strings.Contains(removed[1], "demo-1") {
		t.Errorf("removals %v, want demo-2 then demo-1", removed)
	}
	// The remaining server still takes writes.
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPut, ps.url(kv)+"/api/v1/kv/after-scale-down", strings.NewReader("ok"))
	req.Header.Set("Authorization", "Bearer "+ps.adminToken)
	hc := ps.httpClient()
	resp, err := hc.Do(req)
	if err != nil || resp.StatusCode >= 300 {
		t.Fatalf("write after scaling down: %v %v", err, resp)
	}
	resp.Body.Close()

	// Up again: demo-1 and demo-2 start on their kept volumes, with the
	// Raft state of members that were removed. They ask to be re-admitted
	// and are promoted; every pod ends ready.
	patch(t, kv, func(k *kvv1.KVStore) { k.Spec.Replicas = ptr(int32(3)) })
	until("three voters on kept volumes", func(n int32, st kvv1.KVStoreStatus) bool {
		return n == 3 && voters(st) == 3 && len(st.Members) == 3
	}, func(int32, kvv1.KVStoreStatus) {})
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for i, pr := range ps.procs {
		deadline := time.Now().Add(30 * time.Second)
		for {
			resp, err := hc.Get("https://" + pr.api + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("pod %d not ready: %v %v\n%s", i, err, resp, pr.out)
			}
			<-time.After(100 * time.Millisecond)
		}
	}
}
