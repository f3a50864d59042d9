// Package store is kvstore's state machine: keys, values and their
// metadata in a bbolt file, the in-memory layer in front of it, snapshots,
// watches, verification, offline restore and the TTL sweeper. It holds no
// log: the write path in front of it does (internal/cluster with Raft's
// log, a single node being a one-server cluster), behind internal/backend's
// contract.
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
// One [Flusher] calls Flush as a
// [FlushPolicy] says (an interval, a number of keys, a number of bytes) and
// holds writers back while the unflushed layer is past HoldFactor times
// those limits; the log in front keeps every entry until a flush has made
// it durable ([Store.DurableIndex]).
//
// Reads ([Store.Get], [Store.List]) consult the in-memory layers, then a
// bbolt read transaction, and copy every byte they return. Changes are
// published to a [Hub] as they are applied; it keeps a bounded history so
// that watchers can resume from a recent revision.
//
// A Store is safe for concurrent use; ApplyBuffered and Flush are each
// serialized.
package store
