#!/usr/bin/env bash
# install-helm.sh builds Helm from the Go module proxy (nothing is downloaded
# as a binary) into bin/helm-<version> and points the symlink bin/helm at it.
# It prints the binary's path on stdout (everything else goes to stderr):
#
#	export HELM="$(hack/install-helm.sh)"
#
# The version is pinned below (HELM_VERSION overrides it). The build is
# skipped when bin/helm-<version> exists, so repeated calls are cheap.
#
# The linker flags are those of Helm's own Makefile: the version, and the
# Kubernetes version that `helm template` and `helm lint` assume without a
# cluster (derived, as upstream does, from the k8s.io/client-go version in
# Helm's go.mod: v0.37.0 -> 1.37).
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.22.0}"
module=helm.sh/helm/v3

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$root/bin"
out="$bin/helm-$HELM_VERSION"

log() { echo "install-helm: $*" >&2; }
die() {
	log "$*"
	exit 1
}

[[ "$HELM_VERSION" == v3.* ]] || die "HELM_VERSION=$HELM_VERSION: only Helm v3 (module $module) is supported"

if [[ ! -x "$out" ]]; then
	start=$SECONDS
	log "building $module/cmd/helm@$HELM_VERSION from the Go module proxy..."
	gomod="$(cd "$root" && go mod download -json "$module@$HELM_VERSION" | awk -F'"' '$2 == "GoMod" { print $4 }')"
	[[ -f "$gomod" ]] || die "cannot download go.mod of $module@$HELM_VERSION"
	clientgo="$(go mod edit -print "$gomod" | awk '{ sub(/^require[ \t]+/, "") } $1 == "k8s.io/client-go" { print $2; exit }')"
	[[ "$clientgo" =~ ^v0\.([0-9]+)\. ]] || die "cannot find the k8s.io/client-go version in $gomod"
	kminor="${BASH_REMATCH[1]}"
	ldflags="-s -w"
	ldflags+=" -X $module/internal/version.version=$HELM_VERSION"
	ldflags+=" -X $module/internal/version.gitTreeState=clean"
	for pkg in pkg/lint/rules pkg/chartutil; do
		ldflags+=" -X $module/$pkg.k8sVersionMajor=1 -X $module/$pkg.k8sVersionMinor=$kminor"
	done
	gobin="$bin/.gobin-helm"
	rm -rf "$gobin"
	mkdir -p "$gobin"
	# pkg@version builds with Helm's go.mod, not this repository's; GOFLAGS
	# is cleared so that a -mod=vendor meant for this repository does not apply.
	GOBIN="$gobin" GOFLAGS='' CGO_ENABLED=0 go install -trimpath -ldflags "$ldflags" "$module/cmd/helm@$HELM_VERSION" >&2
	mv "$gobin/helm" "$out"
	rm -rf "$gobin"
	log "built bin/helm-$HELM_VERSION in $((SECONDS - start))s (Kubernetes 1.$kminor assumed offline)"
fi

got="$("$out" version --template '{{.Version}}')"
[[ "$got" == "$HELM_VERSION" ]] || die "$out reports version $got, want $HELM_VERSION"
if [[ "$(readlink "$bin/helm" 2>/dev/null || true)" != "helm-$HELM_VERSION" ]]; then
	ln -sfn "helm-$HELM_VERSION" "$bin/helm"
fi
echo "$out"
