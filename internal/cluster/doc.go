// Package cluster replicates a store across servers with Raft
// (github.com/hashicorp/raft, its log and stable store in
// github.com/hashicorp/raft-wal, one fsync per append: logstore.go; a Raft
// dir holding an older kvstore's raft-boltdb raft.db is refused with
// ErrLogFormat).
//
// The store (internal/store) is the finite state machine: each Raft log
// entry carries a batch of store.Commands (the leader's pacer puts
// everything proposed while the previous entry was in flight into one
// entry; a follower batches what it forwards), applied with
// store.ApplyBuffered at the entry's index; the store records the applied
// index in the same bbolt transaction as the data, so entries at or below it
// are skipped on replay, and Raft is told not to restore a snapshot at start
// (the bbolt file is already the state). A snapshot is a bbolt read
// transaction streamed after a flush; restoring one replaces the file.
//
// The leader's pacer is also the cluster's write clock: as it builds an
// entry it stamps every command in it, its own clients' and those its
// followers forwarded, with one reading of its clock (store.Stamper, never
// earlier than a stamp already applied), replacing any Now a proposer set.
// Replay on every node, at the entry's index, thus decides expiries with
// the same Now, and applying never reads the wall clock.
//
// Every node listens on one peer port. A connection starts, inside mutual
// TLS 1.3 when Config.PeerTLS is set (peertls.go: certificates naming the
// cluster, re-read from disk when they change), with a challenge-response
// over fresh nonces proving both sides hold the shared peer token
// (peerauth.go), checked in constant time before anything else is read. It
// ends with the connection's kind: kind 'R' connections carry Raft's RPCs,
// kind 'H' connections carry the peer HTTP API (forwarded writes,
// read-index requests, joins, status). Every call to another node
// goes through one peer client (peerclient.go) with one routing policy
// (find the leader, follow a leader change, retry only what provably did
// nothing: not_leader, no_quorum, a refused dial) and one error policy (the
// peer API answers wire.Problem bodies from internal/errcode's table; the
// client turns their codes back into the same sentinels). Clients never see
// "not leader": a follower forwards a write to the leader and the leader's
// answer back.
//
// The store is flushed by a store.Flusher under the configured
// store.FlushPolicy, the same policy type the single node uses; the
// leader's pacer waits on it when too much is unflushed (back-pressure).
//
// Errors: store.ErrNoQuorum when no leader is known or the write could not
// be handed to one (not applied, safe to retry); store.ErrOutcomeUnknown
// when the write reached the log but its fate is unknown.
package cluster
