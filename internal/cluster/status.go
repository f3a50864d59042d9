package cluster

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// SelfStatus is one node's own view.
type SelfStatus struct {
	ID           string `json:"id"`
	Address      string `json:"address"`
	State        string `json:"state"` // Leader, Follower, Candidate, Shutdown
	Term         uint64 `json:"term"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	// LastContactMS is how long ago this node heard from the leader (0 on
	// the leader, -1 never).
	LastContactMS int64 `json:"last_contact_ms"`
}

// Member is a server in the Raft configuration, with its own status when it
// answered.
type Member struct {
	ID       string      `json:"id"`
	Address  string      `json:"address"`
	Suffrage string      `json:"suffrage"` // Voter, Nonvoter, Staging
	Leader   bool        `json:"leader"`
	Status   *SelfStatus `json:"status,omitempty"`
	Error    string      `json:"error,omitempty"` // why Status is missing
}

// Status is the cluster as this node sees it.
type Status struct {
	Self     SelfStatus `json:"self"`
	LeaderID string     `json:"leader_id"`
	Leader   string     `json:"leader"`
	Members  []Member   `json:"members"`
}

func (n *Node) selfStatus() SelfStatus {
	lc := n.lastContact()
	ms := lc.Milliseconds()
	if lc < 0 {
		ms = -1
	}
	return SelfStatus{
		ID: n.cfg.NodeID, Address: n.cfg.PeerAdvertise, State: n.raft.State().String(), Term: n.raft.CurrentTerm(),
		CommitIndex: n.raft.CommitIndex(), AppliedIndex: n.raft.AppliedIndex(), LastContactMS: ms,
	}
}

// Status returns this node's view of the cluster, with each member's own
// status fetched from it (a member that does not answer within a second
// carries the error instead).
func (n *Node) Status(ctx context.Context) (Status, error) {
	addr, id := n.raft.LeaderWithID()
	st := Status{Self: n.selfStatus(), LeaderID: string(id), Leader: string(addr)}
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return st, err
	}
	servers := cf.Configuration().Servers
	st.Members = make([]Member, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		st.Members[i] = Member{ID: string(s.ID), Address: string(s.Address), Suffrage: s.Suffrage.String(), Leader: s.ID == id}
		if string(s.ID) == n.cfg.NodeID {
			self := st.Self
			st.Members[i].Status = &self
			continue
		}
		wg.Add(1)
		go func(m *Member) {
			defer wg.Done()
			ss, err := n.peerStatus(ctx, m.Address)
			if err != nil {
				m.Error = err.Error()
				return
			}
			m.Status = &ss
		}(&st.Members[i])
	}
	wg.Wait()
	return st, nil
}

func (n *Node) peerStatus(ctx context.Context, addr string) (SelfStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/peer/v1/status", nil)
	if err != nil {
		return SelfStatus{}, err
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return SelfStatus{}, err
	}
	defer resp.Body.Close()
	var ss SelfStatus
	return ss, json.NewDecoder(resp.Body).Decode(&ss)
}

// IsLeader reports whether this node leads the cluster now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// HasLeader reports whether this node knows a leader.
func (n *Node) HasLeader() bool { addr, _ := n.raft.LeaderWithID(); return addr != "" }

// LeaderChanges counts the leader changes this node observed.
func (n *Node) LeaderChanges() uint64 { return n.leaderCh.Load() }

// Indexes returns the commit index this node knows and the last index it
// applied.
func (n *Node) Indexes() (commit, applied uint64) {
	return n.raft.CommitIndex(), n.raft.AppliedIndex()
}
