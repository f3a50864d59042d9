#!/usr/bin/env bash
# bench-operator.sh measures the KVStore operator against a real API server
# (envtest) and rewrites the operator section of docs/benchmarks.md, between
# the operator-bench:begin/end markers (heading and markers are appended to
# the file if missing; everything else in it is left alone). It
#
#   1. builds the control-plane binaries (hack/envtest-bins.sh, cached),
#   2. runs TestOperatorBench in internal/operatorbench, which builds
#      ./cmd/operator and runs it as a child process: 20 KVStores one at a
#      time (KVStore to all children, next to the bench client creating
#      the same objects itself), then 100 KVStores under a fresh operator
#      process (its VmRSS, VmHWM and Go heap),
#   3. puts the markdown table the test wrote into docs/benchmarks.md.
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

DOC=docs/benchmarks.md
BEGIN='<!-- operator-bench:begin -->'
END='<!-- operator-bench:end -->'
HEADING='## Operator: KVStore to children, and memory at 100 KVStores'
TEST_CMD="KVSTORE_OPERATOR_BENCH=1 go test -count=1 -run '^TestOperatorBench\$' -v -timeout 20m ./internal/operatorbench"

log() { printf '==> %s\n' "$*" >&2; }
die() {
	printf 'error: %s\n' "$*" >&2
	exit 1
}

WORK="$(mktemp -d "${TMPDIR:-/tmp}/kvstore-operator-bench.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

log "building the control-plane binaries (hack/envtest-bins.sh)"
KUBEBUILDER_ASSETS="$(hack/envtest-bins.sh)"
export KUBEBUILDER_ASSETS

log "running: $TEST_CMD"
KVSTORE_OPERATOR_BENCH=1 \
	KVSTORE_OPERATOR_BENCH_OUT="$WORK/result.md" \
	KVSTORE_OPERATOR_BENCH_WRAPPER="hack/bench-operator.sh" \
	go test -count=1 -run '^TestOperatorBench$' -v -timeout 20m ./internal/operatorbench
[[ -s $WORK/result.md ]] || die "the benchmark wrote no result; $DOC is unchanged"

if ! grep -qxF "$BEGIN" "$DOC"; then
	log "adding the operator section to $DOC"
	printf '\n%s\n\n%s\n%s\n' "$HEADING" "$BEGIN" "$END" >>"$DOC"
fi
if [[ "$(grep -cxF "$BEGIN" "$DOC")" != 1 || "$(grep -cxF "$END" "$DOC")" != 1 ]]; then
	die "$DOC must hold exactly one line '$BEGIN' and one '$END'"
fi
awk -v begin="$BEGIN" -v end="$END" -v result="$WORK/result.md" '
	$0 == begin { print; while ((getline line < result) > 0) print line; skip = 1; next }
	$0 == end { if (!skip) exit 2; skip = 0 }
	!skip { print }
' "$DOC" >"$WORK/doc.md" || die "'$END' comes before '$BEGIN' in $DOC"
cat "$WORK/doc.md" >"$DOC"
log "wrote the results into $DOC"
