// Package store is kvstore's storage engine: keys, values and their metadata
// in a single bbolt file.
//
// Every mutation is a [Command] (put, delete, delete-prefix, expire) applied by
// one deterministic function, [Store.Apply], which processes a batch of
// log-indexed entries in a single bbolt read-write transaction and records the
// index of the last applied entry in the same transaction. Apply's outcome
// depends only on the database contents and the commands (each command carries
// the proposer's clock), so a replication layer can feed the same entries to
// every replica and get the same state.
//
// On a single node, a [Committer] stands in for that replication layer: it
// numbers proposed commands and applies everything queued while the previous
// transaction was being fsynced as one batch (group commit), so one fsync
// acknowledges many concurrent writers.
//
// Reads ([Store.Get], [Store.List]) run in bbolt read transactions and copy
// every byte they return before the transaction ends. Changes are published to
// a [Hub] after each commit, which keeps a bounded history so that watchers can
// resume from a recent revision.
//
// A Store is safe for concurrent use. Apply must not be called concurrently
// with itself; the Committer (or a replication FSM) is its only caller.
package store
