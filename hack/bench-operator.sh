#!/usr/bin/env bash
# bench-operator.sh measures the KVStore operator against a real API server
# (envtest) and rewrites the operator section of docs/benchmarks.md, between
# the operator-bench:begin/end markers (heading and markers are appended to
# the file if missing; everything else in it is left alone). It
#
#   1. builds the control-plane binaries (hack/envtest-bins.sh, cached),
#   2. runs TestOperatorBench in bench/internal/operatorbench, which builds
#      ./cmd/operator and runs it as a child process: 20 KVStores one at a
#      time (KVStore to all children, next to the bench client creating
#      the same objects itself), then 100 KVStores under a fresh operator
#      process (its VmRSS, VmHWM and Go heap), and writes its section of
#      docs/benchmarks.md (bench/internal/mdsection, like kvbench).
#
# It takes about a minute on 2 cores. Set KVSTORE_OPERATOR_BENCH_LOGS=DIR
# to keep the operator's logs, KVSTORE_OPERATOR_BENCH_KUBECONFIG=flag to
# hand the operator its kubeconfig as --kubeconfig rather than $KUBECONFIG.
# If the measurement fails, docs/benchmarks.md is not changed and the
# script exits non-zero; missed targets are reported (❌), not failures.
set -euo pipefail
shopt -s inherit_errexit

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { printf '==> %s\n' "$*" >&2; }

log "building the control-plane binaries (hack/envtest-bins.sh)"
KUBEBUILDER_ASSETS="$(hack/envtest-bins.sh)"
export KUBEBUILDER_ASSETS

log "running (in bench/): KVSTORE_OPERATOR_BENCH=1 go test -count=1 -run '^TestOperatorBench\$' -v -timeout 20m ./internal/operatorbench"
cd bench
KVSTORE_OPERATOR_BENCH=1 \
	KVSTORE_OPERATOR_BENCH_DOC="$ROOT/docs/benchmarks.md" \
	KVSTORE_OPERATOR_BENCH_WRAPPER="hack/bench-operator.sh" \
	go test -count=1 -run '^TestOperatorBench$' -v -timeout 20m ./internal/operatorbench
