#!/usr/bin/env bash
# build-etcd.sh builds an unmodified etcd server into bin/etcd from the Go
# module proxy. The etcd version is pinned by bench/cmd/etcd/go.mod
# (go.etcd.io/etcd/server/v3); the build is skipped when bin/etcd already
# reports that version. The binary is a normal etcd, usable as the etcd
# of a Kubernetes envtest as well as by the benchmark.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/bin/etcd"

cd "$root/bench/cmd/etcd" # its own module: the bench module's Kubernetes dependencies would raise etcd
version="$(go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)" # e.g. v3.6.16
want="${version#v}"

if [[ -x "$out" ]] && "$out" --version 2>/dev/null | grep -qx "etcd Version: ${want}"; then
	echo "bin/etcd ${want} is up to date"
	exit 0
fi

echo "building bin/etcd ${want} from the Go module proxy (takes a minute or two)..."
mkdir -p "$root/bin"
tmp="$(mktemp "$root/bin/.etcd.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
# Like etcd's own release build: static, trimmed paths, GitSHA stamped.
# The proxy does not expose the commit, so the tag stands in for it.
CGO_ENABLED=0 go build -trimpath \
	-ldflags "-X go.etcd.io/etcd/api/v3/version.GitSHA=${version}" \
	-o "$tmp" .
mv "$tmp" "$out"
trap - EXIT
"$out" --version
