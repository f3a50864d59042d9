#!/usr/bin/env bash
# bench-backup.sh measures PUT throughput of a three-node kvstore cluster
# (processes on loopback) without a backup and while backups stream from a
# follower, side by side in one run, and rewrites the backup section of
# docs/benchmarks.md (between the backup-bench:begin/end markers; heading
# and markers are appended to the file if missing). It
#
#   1. builds bin/kvstore (make build) and bin/kvbench (the separate Go
#      module in bench/),
#   2. runs `bin/kvbench backup` from the repository root: a fresh cluster,
#      64 MiB preloaded, then for 1, 16 and 64 clients three PUT phases:
#      without a backup, while GET /api/v1/snapshot streams from a
#      follower into a directory unlimited, and one while it streams
#      limited to each -max-rate (default 16MiB, kvstore backup's
#      default, and 64MiB, four times it), backup after backup for the
#      whole phase, each ratio judged against the 80% target (issue 14).
#
# Extra arguments go to kvbench backup (`bin/kvbench backup -help`), e.g.
#
#	hack/bench-backup.sh -max-rate 32MiB
#	hack/bench-backup.sh -clients 16 -duration 5s -preload-mib 256
#
# With the defaults it takes 2-3 minutes on 2 cores. A missed target
# is recorded as ❌; a failed row is recorded and makes the script exit
# non-zero.
set -euo pipefail
shopt -s inherit_errexit

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { printf '==> %s\n' "$*" >&2; }

log "building bin/kvstore (make build)"
make --no-print-directory build
log "building bin/kvbench"
(cd bench && go build -o ../bin/kvbench ./cmd/kvbench)

log "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); uptime:$(uptime | sed 's/.*load average/ load average/')"
log "running: bin/kvbench backup $*"
KVBENCH_WRAPPER="hack/bench-backup.sh" exec bin/kvbench backup -out docs/benchmarks.md "$@"
