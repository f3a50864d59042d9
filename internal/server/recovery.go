package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"kvstore.dev/kvstore/internal/cluster"
	"kvstore.dev/kvstore/internal/config"
	"kvstore.dev/kvstore/internal/errcode"
	"kvstore.dev/kvstore/wire"
)

// Files of a recovery requested through the API (POST
// /api/v1/cluster/recover), in the data directory.
const (
	// RecoverRequestFile holds the request the running server accepted;
	// the next start carries it out and removes it.
	RecoverRequestFile = "recover-request.json"
	// RecoverDoneFile records the last request carried out (or tried), so
	// that a request runs at most once.
	RecoverDoneFile = "recover-done.json"
)

// ErrRestartToRecover is what Run returns after it accepted a recovery
// request and shut down: the process exits non-zero so that its supervisor
// (the kubelet, systemd) starts it again, and that start recovers.
var ErrRestartToRecover = errors.New("kvstore: restarting to carry out a recovery request")

// recoverRequest is RecoverRequestFile's content.
type recoverRequest struct {
	RequestID   string    `json:"request_id"`
	NodeID      string    `json:"node_id"`
	RequestedAt time.Time `json:"requested_at"`
	// LastLogTerm and LastLogIndex are the server's log position when it
	// accepted the request.
	LastLogTerm  uint64 `json:"last_log_term"`
	LastLogIndex uint64 `json:"last_log_index"`
}

// recoverDone is RecoverDoneFile's content.
type recoverDone struct {
	RequestID string    `json:"request_id"`
	NodeID    string    `json:"node_id"`
	Address   string    `json:"address"`
	StartedAt time.Time `json:"started_at"`
	// Finished is false while (or when a crash stopped) cluster.Recover.
	Finished     bool      `json:"finished"`
	FinishedAt   time.Time `json:"finished_at,omitzero"`
	Previous     []string  `json:"previous,omitempty"` // the configuration before, as "id@address"
	LastLogTerm  uint64    `json:"last_log_term"`
	LastLogIndex uint64    `json:"last_log_index"`
	AppliedIndex uint64    `json:"applied_index"`
	Error        string    `json:"error,omitempty"`
}

// recoverer is the API's Options.Recover: it records an accepted request
// and asks Run to shut down. It is safe for concurrent use.
type recoverer struct {
	dataDir string
	log     *slog.Logger
	mu      sync.Mutex
	restart chan struct{} // closed once a request is recorded
	closed  bool
}

func newRecoverer(dataDir string, log *slog.Logger) *recoverer {
	return &recoverer{dataDir: dataDir, log: log, restart: make(chan struct{})}
}

// request records req (the API checked it against self) in
// RecoverRequestFile and makes Run restart. A request already carried out
// is refused; the same request again is accepted again.
func (rc *recoverer) request(req wire.RecoverRequest, self wire.NodeStatus) error {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if done, err := readJSON[recoverDone](filepath.Join(rc.dataDir, RecoverDoneFile)); err != nil {
		return err
	} else if done != nil && done.RequestID == req.RequestID {
		return fmt.Errorf("%w: request %q was carried out already (started %s)", errcode.ErrRecoveryRefused, req.RequestID, done.StartedAt.Format(time.RFC3339))
	}
	if pending, err := readJSON[recoverRequest](filepath.Join(rc.dataDir, RecoverRequestFile)); err != nil {
		return err
	} else if pending != nil && pending.RequestID != req.RequestID {
		return fmt.Errorf("%w: another request (%q) is pending", errcode.ErrRecoveryRefused, pending.RequestID)
	}
	rec := recoverRequest{RequestID: req.RequestID, NodeID: req.NodeID, RequestedAt: time.Now().UTC(),
		LastLogTerm: self.LastLogTerm, LastLogIndex: self.LastLogIndex}
	if err := writeJSON(filepath.Join(rc.dataDir, RecoverRequestFile), rec); err != nil {
		return fmt.Errorf("record the recovery request: %w", err)
	}
	if !rc.closed {
		rc.closed = true
		close(rc.restart)
	}
	return nil
}

// recoverOnStart carries out a recorded recovery request, before the
// store and Raft are opened: cluster.Recover for this node's id and peer
// address. It runs each request at most once: RecoverDoneFile names the
// request before Recover starts, and a request it names is not run again.
// A recovery that fails is logged and recorded, and the server starts as
// it was; only a data directory it cannot write stops the start.
func recoverOnStart(cfg config.Config, log *slog.Logger) error {
	reqPath := filepath.Join(cfg.DataDir, RecoverRequestFile)
	req, err := readJSON[recoverRequest](reqPath)
	if err != nil || req == nil {
		return err
	}
	donePath := filepath.Join(cfg.DataDir, RecoverDoneFile)
	done, err := readJSON[recoverDone](donePath)
	if err != nil {
		return err
	}
	if done != nil && done.RequestID == req.RequestID {
		log.Warn("recovery request carried out already; not again", "recovery_request", req.RequestID, "finished", done.Finished, "error", done.Error)
		return removeSynced(reqPath)
	}
	c := cfg.Cluster
	rec := recoverDone{RequestID: req.RequestID, NodeID: c.NodeID, Address: c.PeerAdvertise, StartedAt: time.Now().UTC()}
	if req.NodeID != c.NodeID {
		rec.Finished, rec.FinishedAt = true, rec.StartedAt
		rec.Error = fmt.Sprintf("the request is for node %q, this is %q", req.NodeID, c.NodeID)
	} else if err := writeJSON(donePath, rec); err != nil {
		return fmt.Errorf("record the recovery's start: %w", err)
	}
	if rec.Error == "" {
		log.Warn("RECOVERING FROM A LOST QUORUM: making this server the only one of a new cluster; entries the lost servers committed and this one never received are lost",
			"recovery_request", req.RequestID, "node", c.NodeID, "address", c.PeerAdvertise,
			"last_log_term", req.LastLogTerm, "last_log_index", req.LastLogIndex)
		res, err := cluster.Recover(cfg.DataDir, c.NodeID, c.PeerAdvertise)
		rec.Finished, rec.FinishedAt = true, time.Now().UTC()
		rec.LastLogTerm, rec.LastLogIndex, rec.AppliedIndex = res.LastLogTerm, res.LastLogIndex, res.AppliedIndex
		for _, s := range res.Previous {
			rec.Previous = append(rec.Previous, string(s.ID)+"@"+string(s.Address))
		}
		if err != nil {
			rec.Error = err.Error()
		}
	}
	if err := writeJSON(donePath, rec); err != nil {
		return fmt.Errorf("record the recovery's result: %w", err)
	}
	if rec.Error != "" {
		log.Error("recovery failed; starting as the member of the old cluster it was", "recovery_request", req.RequestID, "node", c.NodeID, "err", rec.Error)
	} else {
		log.Warn("RECOVERED: this server is now the only voter of a one-server cluster; add the others back as fresh members",
			"recovery_request", req.RequestID, "node", c.NodeID, "address", c.PeerAdvertise,
			"previous", strings.Join(rec.Previous, " "), "last_log_term", rec.LastLogTerm, "last_log_index", rec.LastLogIndex,
			"applied_index", rec.AppliedIndex)
	}
	return removeSynced(reqPath)
}

// readJSON reads a JSON file into a T; nil when it does not exist.
func readJSON[T any](path string) (*T, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	v := new(T)
	if err := json.Unmarshal(b, v); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// writeJSON writes v to path durably: a synced temporary file renamed
// over it, and the directory synced.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

// removeSynced removes path and syncs its directory.
func removeSynced(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
