package harness

import (
	"net/http"
	"syscall"
	"testing"
	"time"

	"kvstore.dev/kvstore/wire"
)

func TestMain(m *testing.M) { Main(m) }

// TestProcessKillRestart starts a server, writes, kills it with SIGKILL and
// restarts it on the same data dir and address: the write is still there.
func TestProcessKillRestart(t *testing.T) {
	p := StartProcess(t, ProcessOptions{})
	c := p.Client(t)
	if r := c.Put("a", []byte("1")); r.Status != http.StatusCreated {
		t.Fatalf("PUT a: %v %s", r, r.Body)
	}
	p.Kill(t)
	if !p.Exited() {
		t.Fatal("Exited after Kill = false")
	}
	p.Restart(t, ReadyTimeout)
	if r := c.Get("a", ""); r.Status != http.StatusOK || string(r.Body) != "1" {
		t.Fatalf("GET a after kill -9 and restart: %v %q", r, r.Body)
	}
	if r := c.Get("missing", ""); r.Status != http.StatusNotFound || r.Code() != wire.CodeNotFound {
		t.Fatalf("GET missing: %v, want 404 %s", r, wire.CodeNotFound)
	}
	st, err := c.AdminStatus()
	if err != nil || st.Keys != 1 {
		t.Fatalf("admin status %+v, %v; want 1 key", st, err)
	}
	p.Signal(t, syscall.SIGSTOP)
	if r := c.WithTimeout(300*time.Millisecond).Get("a", ""); r.Err == nil {
		t.Errorf("GET of a stopped server answered: %v", r)
	}
	p.Signal(t, syscall.SIGCONT)
	if err := p.WaitReady(ReadyTimeout); err != nil {
		t.Fatal(err)
	}
	p.Terminate(t)
}

// TestCluster starts three processes that agree on a leader.
func TestCluster(t *testing.T) {
	c := StartCluster(t, ClusterOptions{Size: 3})
	leader := c.Leader(t)
	st := WaitStatus(t, c.Others(leader)[0].Client(t), "three voters", func(st wire.ClusterStatus) bool {
		return len(st.Members) == 3 && Suffrage(st, "n2") == wire.SuffrageVoter
	})
	if st.LeaderID != leader.ID {
		t.Errorf("a follower names leader %q, want %q", st.LeaderID, leader.ID)
	}
}
