#!/usr/bin/env bash
# bench.sh builds bin/kvstore, bin/etcd and bin/kvbench, then runs kvbench
# from the repository root. kvbench compares kvstore with etcd and a bare
# net/http server and rewrites the generated section of docs/benchmarks.md.
# Extra arguments are passed to kvbench, e.g.
#
#	hack/bench.sh -duration 2s -load-values 100000
#
# With the defaults the whole run takes about 4-8 minutes on 2 cores
# (plus 1-2 minutes the first time bin/etcd is built).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

echo "building bin/kvstore..."
go build -o bin/kvstore ./cmd/server
hack/build-etcd.sh
echo "building bin/kvbench..."
(cd bench && go build -o ../bin/kvbench ./cmd/kvbench)

KVBENCH_WRAPPER="hack/bench.sh" exec bin/kvbench "$@"
