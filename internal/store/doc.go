// Package store is kvstore's storage engine: keys, values and their metadata
// in a bbolt file, in front of it a write-ahead log.
//
// Every mutation is a [Command] (put, delete, delete-prefix, expire) applied by
// one deterministic function to log-indexed entries ([Store.ApplyBuffered]).
// Its outcome depends only on the store's state and the commands (each
// command carries the proposer's clock), so a replication layer can feed the
// same entries to every replica and get the same state. Entries at or below
// the applied index are skipped, so a log can be replayed.
//
// Applied entries land in an in-memory layer that readers see at once, a
// whole batch together. [Store.Flush] writes that layer to bbolt in one
// sorted transaction together with the applied index, so bbolt's random-key
// page writes are paid per flush, not per write.
//
// On a single node a [Committer] stands in for the replication layer: it
// numbers proposed commands, appends everything queued while the previous
// append was being fsynced to the [WAL] with one write and one fdatasync
// (group commit), applies the batch and answers the writers; a background
// flusher calls Flush and truncates the WAL behind it. On start it replays
// the WAL entries after the store's applied index.
//
// Reads ([Store.Get], [Store.List]) consult the in-memory layers, then a
// bbolt read transaction, and copy every byte they return. Changes are
// published to a [Hub] as they are applied; it keeps a bounded history so
// that watchers can resume from a recent revision.
//
// A Store is safe for concurrent use; ApplyBuffered and Flush are each
// serialized.
package store
