package wire

import (
	"net/url"
	"strings"
)

// Client API paths (docs/api.md). A key path is PathKV + "/" + the key,
// escaped by KeyPath.
const (
	PathKV       = "/api/v1/kv"
	PathWatch    = "/api/v1/watch"
	PathStatus   = "/api/v1/status"
	PathSnapshot = "/api/v1/snapshot"
	PathCluster  = "/api/v1/cluster"
	PathMembers  = "/api/v1/cluster/members"
	PathRecover  = "/api/v1/cluster/recover"
	PathHealthz  = "/healthz"
	PathReadyz   = "/readyz"
	PathMetrics  = "/metrics"
)

// Peer API paths, served on the peer port beside Raft (internal/cluster).
const (
	PeerPathPropose   = "/peer/v1/propose"
	PeerPathReadIndex = "/peer/v1/read-index"
	PeerPathMembers   = "/peer/v1/members"
	PeerPathStatus    = "/peer/v1/status"
)

// KeyPath is the path of one key: PathKV, "/", and the key with each
// segment escaped (slashes stay separators).
func KeyPath(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return PathKV + "/" + strings.Join(segs, "/")
}

// MemberPath is the path of one member (DELETE removes it).
func MemberPath(id string) string { return PathMembers + "/" + url.PathEscape(id) }

// PeerMemberPath is the peer API's path of one member.
func PeerMemberPath(id string) string { return PeerPathMembers + "/" + url.PathEscape(id) }
