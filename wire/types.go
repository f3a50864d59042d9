package wire

import "time"

// KeyMeta is a key's metadata, and with ?keys_only unset its value: the body
// of GET on a key (as headers), of PUT responses and of list items.
type KeyMeta struct {
	Key            string     `json:"key"`
	Value          []byte     `json:"value,omitempty"`
	ContentType    string     `json:"content_type,omitempty"`
	Revision       uint64     `json:"revision"`
	CreateRevision uint64     `json:"create_revision"`
	Version        uint64     `json:"version"`
	ExpiresAt      *time.Time `json:"expires_at"`
}

// ListResponse is one page of GET /api/v1/kv. Next is the cursor of the
// following page (the after parameter), empty on the last page.
type ListResponse struct {
	Items    []KeyMeta `json:"items"`
	Next     string    `json:"next"`
	Revision uint64    `json:"revision"`
}

// DeletePrefixResponse is the body of DELETE /api/v1/kv?prefix=.
type DeletePrefixResponse struct {
	Deleted  int    `json:"deleted"`
	Revision uint64 `json:"revision"`
}

// Event types of a watch stream.
const (
	EventPut    = "put"
	EventDelete = "delete"
)

// WatchEvent is the data of one Server-Sent Event of GET /api/v1/watch; the
// event's id is Revision.
type WatchEvent struct {
	Type        string `json:"type"`
	Key         string `json:"key"`
	Revision    uint64 `json:"revision"`
	Value       []byte `json:"value,omitempty"`
	ContentType string `json:"content_type,omitempty"`
}

// Status is GET /api/v1/status for every token: version, store revision,
// start time and uptime.
type Status struct {
	Version       string    `json:"version"`
	Revision      uint64    `json:"revision"`
	StartedAt     time.Time `json:"started_at"`
	UptimeSeconds float64   `json:"uptime_seconds"`
}

// AdminStatus is GET /api/v1/status for an admin token: Status and the
// store-wide numbers, which a token limited to some prefixes must not learn.
type AdminStatus struct {
	Status
	AppliedIndex uint64 `json:"applied_index"`
	Keys         int64  `json:"keys"`
	DBSizeBytes  int64  `json:"db_size_bytes"`
	Watchers     int    `json:"watchers"`
}

// Raft states of NodeStatus.State.
const (
	StateLeader    = "Leader"
	StateFollower  = "Follower"
	StateCandidate = "Candidate"
	StateShutdown  = "Shutdown"
)

// Suffrages of Member.Suffrage.
const (
	SuffrageVoter    = "Voter"
	SuffrageNonvoter = "Nonvoter"
	SuffrageStaging  = "Staging"
)

// NodeStatus is one server's own view: the peer API's GET /peer/v1/status,
// and ClusterStatus.Self.
type NodeStatus struct {
	ID           string `json:"id"`
	Address      string `json:"address"`
	State        string `json:"state"` // StateLeader, ...
	Term         uint64 `json:"term"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	// LastLogTerm and LastLogIndex are the term and index of the last entry
	// in this server's Raft log (or of its latest snapshot when the log
	// after it is empty). After a lost quorum, the survivor with the
	// highest (LastLogTerm, LastLogIndex) holds the most of the log: the
	// one to recover from (docs/backup.md, "Lost quorum").
	LastLogTerm  uint64 `json:"last_log_term"`
	LastLogIndex uint64 `json:"last_log_index"`
	// LastContactMS is how long ago this server heard from the leader (0 on
	// the leader, -1 never).
	LastContactMS int64 `json:"last_contact_ms"`
}

// Member is a server in the Raft configuration, with its own status when it
// answered.
type Member struct {
	ID       string      `json:"id"`
	Address  string      `json:"address"`
	Suffrage string      `json:"suffrage"` // SuffrageVoter, ...
	Leader   bool        `json:"leader"`
	Status   *NodeStatus `json:"status,omitempty"`
	Error    string      `json:"error,omitempty"` // why Status is missing
}

// ClusterStatus is GET /api/v1/cluster (admin only): the cluster as the
// answering server sees it. A single node answers Enabled false, itself as
// leader and one member.
type ClusterStatus struct {
	Enabled  bool       `json:"enabled"`
	Self     NodeStatus `json:"self"`
	LeaderID string     `json:"leader_id"`
	Leader   string     `json:"leader"`
	Members  []Member   `json:"members"`
}

// Join kinds of AddMemberRequest.Join: a server that asks for itself says
// whether it comes with an empty data directory or with its kept Raft state.
const (
	JoinEmpty = "empty"
	JoinKept  = "kept"
)

// AddMemberRequest is the body of POST /api/v1/cluster/members (Voter nil
// means true) and of the peer API's POST /peer/v1/members.
type AddMemberRequest struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	// Voter adds the server with a vote; false adds a non-voter that
	// replicates without counting for the quorum (add it again as a voter
	// to promote it). Absent means true.
	Voter *bool `json:"voter,omitempty"`
	// Join is set only by a server asking for itself (JoinEmpty, JoinKept).
	Join string `json:"join,omitempty"`
}

// IsVoter is Voter with its default.
func (r AddMemberRequest) IsVoter() bool { return r.Voter == nil || *r.Voter }

// AddMemberResponse answers POST /api/v1/cluster/members.
type AddMemberResponse struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	Voter   bool   `json:"voter"`
}

// RemoveMemberResponse answers DELETE /api/v1/cluster/members/{id}.
type RemoveMemberResponse struct {
	Removed string `json:"removed"`
}

// RecoverRequest is the body of POST /api/v1/cluster/recover (admin only):
// make the answering server, a member of a cluster that lost its quorum
// for good, the only server of a new one-server cluster. The server
// refuses unless it is NodeID, a member of a multi-server cluster that
// sees no leader; it then records the request in its data directory and
// exits (non-zero, so that its supervisor restarts it), and at its next
// start recovers (cluster.Recover) before it opens Raft. A RequestID is
// carried out at most once.
type RecoverRequest struct {
	NodeID    string `json:"node_id"`
	RequestID string `json:"request_id"`
}

// RecoverResponse answers POST /api/v1/cluster/recover (202 Accepted): the
// request is recorded and the server is restarting. LastLogTerm and
// LastLogIndex are its Raft log position when it accepted: the log it
// keeps.
type RecoverResponse struct {
	NodeID       string `json:"node_id"`
	RequestID    string `json:"request_id"`
	LastLogTerm  uint64 `json:"last_log_term"`
	LastLogIndex uint64 `json:"last_log_index"`
}

// EventExpire is the type of a watch event of a key whose TTL ran out.
const EventExpire = "expire"

// Consistency levels of reads (the consistency parameter of GET on a key
// and of lists; docs/api.md). Empty means ConsistencyLinearizable.
const (
	ConsistencyLinearizable = "linearizable"
	ConsistencyLeader       = "leader"
	ConsistencyStale        = "stale"
)
