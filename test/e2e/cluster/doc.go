// Package cluster holds the end-to-end tests of a replicated kvstore
// (cluster mode, internal/cluster): clusters of server processes on
// loopback (test/harness) that are killed with -9, frozen with SIGSTOP,
// stopped with SIGTERM, scaled down and up and restarted, and clusters of
// containers on the real Docker engine, where faults are injected the way
// they happen to a deployment: a network that stops carrying a replica's
// traffic, not a process told to misbehave.
//
// TestPartitionLeaderCutOff starts three containers of the server image
// (kvstore/kvstore:local, built offline by hack/images.sh) and cuts the
// Raft leader off from the other two with `docker network disconnect`. It
// checks that the isolated minority refuses writes and linearizable reads
// (503 no_quorum, or 504 outcome_unknown for a write caught in its log),
// that the majority elects a new leader and keeps taking writes (the
// failover time is logged) while every request sent to it at the moment of
// the cut is answered within the server's apply timeout plus slack (15s),
// and that after `docker network connect` the old
// leader rejoins as a follower and every acknowledged write reads back,
// linearizably, on all three nodes.
//
// Every container is attached to two user-defined bridge networks:
//
//	kvstore_part_<rand>_peer    internal (no gateway); carries Raft and the
//	                            peer API. Each node has the alias n0, n1, n2
//	                            here and advertises <alias>:7000. This is the
//	                            network the test disconnects.
//	kvstore_part_<rand>_client  carries the API port, published on
//	                            127.0.0.1 with an ephemeral host port, so the
//	                            test still reaches the isolated node.
//
// The containers run as the image's non-root user with a read-only root
// file system, no capabilities and no-new-privileges; /data is the image's
// anonymous volume (owned by 65532), removed with the container. Everything
// the test creates carries the label dev.kvstore.test=partition and is
// removed by t.Cleanup, even on failure, after the containers' logs are
// printed. A run killed before its cleanup leaves them behind; remove them
// with
//
//	docker rm -f -v $(docker ps -aq --filter label=dev.kvstore.test=partition)
//	docker network rm $(docker network ls -q --filter label=dev.kvstore.test=partition)
//
// Run with
//
//	go test -count=1 -run TestPartition -v ./test/e2e/cluster/
//
// Without a Docker engine the test is skipped, or fails when CI is set,
// like the compose end-to-end test (test/e2e/compose); -short skips it.
package cluster
