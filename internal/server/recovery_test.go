package server

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kvstore.dev/kvstore/internal/config"
	"kvstore.dev/kvstore/wire"
)

// TestRecoverOnStartAtMostOnce: a recorded request is carried out (here:
// tried, and refused by cluster.Recover, since the data dir holds no Raft
// state) and recorded as done; the same request recorded again is not
// run again; the API's side refuses a request already done. Either way the
// pending request is gone afterwards and the start goes on.
func TestRecoverOnStartAtMostOnce(t *testing.T) {
	dir := t.TempDir()
	var cfg config.Config
	cfg.DataDir, cfg.Cluster.Enabled, cfg.Cluster.NodeID, cfg.Cluster.PeerAdvertise = dir, true, "n0", "127.0.0.1:7000"
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))

	rc := newRecoverer(dir, log)
	if err := rc.request(wire.RecoverRequest{NodeID: "n0", RequestID: "r1"}, wire.NodeStatus{LastLogTerm: 2, LastLogIndex: 9}); err != nil {
		t.Fatalf("request: %v", err)
	}
	select {
	case <-rc.restart:
	default:
		t.Fatal("a recorded request did not ask for a restart")
	}
	if err := rc.request(wire.RecoverRequest{NodeID: "n0", RequestID: "r2"}, wire.NodeStatus{}); err == nil {
		t.Error("a second request was accepted while r1 is pending")
	}

	if err := recoverOnStart(cfg, log); err != nil {
		t.Fatalf("recoverOnStart: %v", err)
	}
	done, err := readJSON[recoverDone](filepath.Join(dir, RecoverDoneFile))
	if err != nil || done == nil || done.RequestID != "r1" || !done.Finished || !strings.Contains(done.Error, "no raft state") {
		t.Fatalf("done = %+v (%v), want r1 finished with cluster.Recover's refusal", done, err)
	}
	if _, err := os.Stat(filepath.Join(dir, RecoverRequestFile)); !os.IsNotExist(err) {
		t.Fatalf("the request is still pending: %v", err)
	}

	// r1 again: refused by the API's side; recorded by hand, not run.
	if err := newRecoverer(dir, log).request(wire.RecoverRequest{NodeID: "n0", RequestID: "r1"}, wire.NodeStatus{}); err == nil {
		t.Error("a request carried out already was accepted again")
	}
	if err := writeJSON(filepath.Join(dir, RecoverRequestFile), recoverRequest{RequestID: "r1", NodeID: "n0"}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, RecoverDoneFile))
	if err := recoverOnStart(cfg, log); err != nil {
		t.Fatalf("recoverOnStart: %v", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, RecoverDoneFile))
	if !bytes.Equal(before, after) {
		t.Errorf("the request ran again:\nbefore %s\nafter %s", before, after)
	}
	if _, err := os.Stat(filepath.Join(dir, RecoverRequestFile)); !os.IsNotExist(err) {
		t.Errorf("the request is still pending: %v", err)
	}

	// A request for another node is recorded as failed, not run.
	if err := writeJSON(filepath.Join(dir, RecoverRequestFile), recoverRequest{RequestID: "r3", NodeID: "n1"}); err != nil {
		t.Fatal(err)
	}
	if err := recoverOnStart(cfg, log); err != nil {
		t.Fatalf("recoverOnStart: %v", err)
	}
	if done, _ := readJSON[recoverDone](filepath.Join(dir, RecoverDoneFile)); done == nil || done.RequestID != "r3" || !strings.Contains(done.Error, `for node "n1"`) {
		t.Errorf("done = %+v, want r3 refused as another node's", done)
	}
}
