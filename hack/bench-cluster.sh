#!/usr/bin/env bash
# bench-cluster.sh compares a three-node kvstore cluster (Raft) with a
# three-member etcd cluster, both as processes on loopback on this machine,
# one after the other, and rewrites the three-node section of
# docs/benchmarks.md (between the cluster-bench:begin/end markers; heading
# and markers are appended to the file if missing, everything else in it is
# left alone). It
#
#   1. builds bin/kvstore (make build), bin/etcd (hack/build-etcd.sh,
#      cached) and bin/kvbench (the separate Go module in bench/),
#   2. runs `bin/kvbench cluster` from the repository root: for 1, 16 and
#      64 clients, PUT throughput and latency of each system on a fresh
#      cluster, clients spread over the three nodes and then all on the
#      leader; then each system's leader failover (kill -9 of the leader
#      under write load, three times, time to the first acknowledged
#      write) and a read-back of every acknowledged write.
#
# Extra arguments go to kvbench cluster (`bin/kvbench cluster -help`), e.g.
#
#	hack/bench-cluster.sh -clients 64 -duration 5s -failover-reps 1
#
# With the defaults it takes about 3-4 minutes on 2 cores (plus 1-2 minutes
# the first time bin/etcd is built). If nothing could be measured,
# docs/benchmarks.md is not changed; a missed target is recorded as ❌;
# failed rows and lost writes are recorded and make the script exit
# non-zero.
set -euo pipefail
shopt -s inherit_errexit

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { printf '==> %s\n' "$*" >&2; }

log "building bin/kvstore (make build)"
make --no-print-directory build
log "building bin/etcd (hack/build-etcd.sh)"
hack/build-etcd.sh
log "building bin/kvbench"
(cd bench && go build -o ../bin/kvbench ./cmd/kvbench)

log "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); uptime:$(uptime | sed 's/.*load average/ load average/')"
log "running: bin/kvbench cluster $*"
KVBENCH_WRAPPER="hack/bench-cluster.sh" exec bin/kvbench cluster -out docs/benchmarks.md "$@"
