#!/usr/bin/env bash
# install-promtool.sh builds Prometheus's promtool (Apache-2.0), which the
# alert rule tests use to check and unit-test the shipped rules
# (config/prometheus), from the Go module proxy (nothing is downloaded as
# a binary) into bin/promtool-<version> and points the symlink bin/promtool
# at it. It prints the binary's path on stdout (everything else goes to
# stderr):
#
#	export KVSTORE_PROMTOOL_BIN="$(hack/install-promtool.sh)"
#
# Prometheus's go.mod has no replace or exclude directive that `go install
# pkg@version` refuses, so no wrapper module is needed (compare
# hack/install-weed.sh). The build is skipped when bin/promtool-<version>
# exists, so repeated calls are cheap; a cold build took 18 minutes
# on two loaded cores (2026-12-03).
set -euo pipefail

module=github.com/prometheus/prometheus
version=v0.316.0

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$root/bin"
out="$bin/promtool-$version"

log() { echo "install-promtool: $*" >&2; }
die() {
	log "$*"
	exit 1
}

if [[ ! -x "$out" ]]; then
	start=$SECONDS
	log "building $module/cmd/promtool@$version from the Go module proxy (10-30 minutes cold on two loaded cores)..."
	mkdir -p "$bin"
	gobin="$(mktemp -d "$bin/.gobin-promtool.XXXXXX")"
	trap 'rm -rf "$gobin"' EXIT
	# GOFLAGS is cleared so that a -mod=vendor meant for this repository
	# does not apply to the build.
	GOFLAGS='' CGO_ENABLED=0 GOBIN="$gobin" go install -trimpath \
		-ldflags "-s -w" \
		"$module/cmd/promtool@$version" >&2
	mv "$gobin/promtool" "$out"
	log "built bin/promtool-$version in $((SECONDS - start))s"
fi

got="$(go version -m "$out" | awk '$1 == "mod" { print $2, $3 }')"
[[ "$got" == "$module $version" ]] || die "$out is built from \"$got\", want $module $version"
if [[ "$(readlink "$bin/promtool" 2>/dev/null || true)" != "promtool-$version" ]]; then
	ln -sfn "promtool-$version" "$bin/promtool"
fi
echo "$out"
