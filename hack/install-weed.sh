#!/usr/bin/env bash
# install-weed.sh builds SeaweedFS's weed (Apache-2.0), whose S3 gateway the
# backup tests use as a real S3-compatible server, from the Go module proxy
# (nothing is downloaded as a binary) into bin/weed-<version> and points the
# symlink bin/weed at it. It prints the binary's path on stdout (everything
# else goes to stderr):
#
#	export KVSTORE_WEED_BIN="$(hack/install-weed.sh)"
#
# The version is the one hack/weed/go.mod requires: SeaweedFS's go.mod has
# a replace directive, which applies only in the main module, so weed is
# built inside that small wrapper module, which repeats it. The build is
# skipped when bin/weed-<version> exists, so repeated calls are cheap; a
# cold build took about 45 minutes on two loaded cores (2026-12-02).
set -euo pipefail

module=github.com/seaweedfs/seaweedfs

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$root/bin"
wrapper="$root/hack/weed"

log() { echo "install-weed: $*" >&2; }
die() {
	log "$*"
	exit 1
}

version="$(awk -v m="$module" '{ sub(/^require[ \t]+/, "") } $1 == m { print $2; exit }' "$wrapper/go.mod")"
[[ -n "$version" ]] || die "cannot find the $module version in $wrapper/go.mod"
commit="${version##*-}" # v0.0.0-<time>-<commit>: the pseudo-version's commit
out="$bin/weed-$version"

if [[ ! -x "$out" ]]; then
	start=$SECONDS
	log "building $module/weed@$version from the Go module proxy (15-45 minutes cold on two loaded cores)..."
	mkdir -p "$bin"
	# GOFLAGS is cleared so that a -mod=vendor meant for this repository
	# does not apply to the wrapper module.
	(cd "$wrapper" && GOFLAGS='' CGO_ENABLED=0 go build -trimpath \
		-ldflags "-s -w -X $module/weed/util/version.COMMIT=$commit" \
		-o "$out.tmp" "$module/weed") >&2
	mv "$out.tmp" "$out"
	log "built bin/weed-$version in $((SECONDS - start))s"
fi

got="$("$out" version 2>&1 | head -n 1)"
[[ "$got" == *"$commit"* ]] || die "$out reports \"$got\", want commit $commit"
if [[ "$(readlink "$bin/weed" 2>/dev/null || true)" != "weed-$version" ]]; then
	ln -sfn "weed-$version" "$bin/weed"
fi
echo "$out"
