#!/usr/bin/env bash
# bins.sh builds the local cluster's programs from the Go module proxy into
# bin/kube/ and prints that directory on stdout (progress goes to stderr):
#
#	kube-controller-manager, kube-scheduler, kubelet, kube-proxy
#	    from hack/envtest's wrapper module (k8s.io/kubernetes, pinned by
#	    hack/envtest/go.mod), the same build cache as kube-apiserver;
#	kube-apiserver, kubectl, etcd
#	    copied from hack/envtest-bins.sh's output (built there);
#	coredns, local-path-provisioner, crictl
#	    `go install <package>@<version>` with the versions pinned below
#	    (none of their go.mod files has a replace directive, so no wrapper
#	    module is needed);
#	traefik
#	    Traefik's own main package, built in the wrapper module
#	    hack/kube/traefik (its go.mod pins the version and repeats
#	    Traefik's replace directives, which `go install` refuses);
#	pause
#	    hack/kube/pause, the pod sandbox's process.
#
# A program is built again only when the binary in bin/kube/ does not
# report the pinned version. Builds run under `nice`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="$ROOT/bin/kube"

COREDNS_VERSION=v1.15.0    # github.com/coredns/coredns
LOCAL_PATH_VERSION=v0.0.30 # github.com/rancher/local-path-provisioner
CRICTL_VERSION=v1.37.0     # sigs.k8s.io/cri-tools

log() { echo "bins: $*" >&2; }
mkdir -p "$OUT"

# have <name> <want>: bin/kube/<name> exists and `go version -m` says its
# main module is at <want> ("path version").
have() {
	[[ -x "$OUT/$1" ]] && go version -m "$OUT/$1" 2>/dev/null |
		awk -v want="$2" '$1 == "mod" { exit !($2 " " $3 == want) }'
}

# install <name> <module> <version> <package> [ldflags]: go install
# <package>@<version> into a temporary GOBIN, then move it into place.
install() {
	local name="$1" mod="$2" ver="$3" pkg="$4" ldflags="${5:-}" tmp start=$SECONDS
	if have "$name" "$mod $ver"; then
		log "$name $ver is up to date"
		return
	fi
	log "building $name $ver from the Go module proxy..."
	tmp="$(mktemp -d "$OUT/.build.XXXXXX")"
	(cd "$tmp" && GOBIN="$tmp" CGO_ENABLED=0 GOFLAGS= nice go install -trimpath -ldflags "-s -w $ldflags" "$pkg@$ver") >&2
	mv "$tmp/$(basename "$pkg")" "$OUT/$name"
	rm -rf "$tmp"
	log "built $name $ver in $((SECONDS - start))s"
}

# The Kubernetes binaries: the same module, ldflags and version check as
# hack/envtest-bins.sh.
kube() {
	local mod="$ROOT/hack/envtest" kver minor ldflags="" pkg name start
	kver="$(cd "$mod" && go mod edit -print | awk '{ sub(/^require[ \t]+/, "") } $1 == "k8s.io/kubernetes" { print $2; exit }')"
	minor="${kver#v1.}"
	minor="${minor%%.*}"
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ldflags+=" -X $pkg.gitVersion=$kver -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
	done
	for name in kube-controller-manager kube-scheduler kubelet kube-proxy; do
		if [[ -x "$OUT/$name" ]] && "$OUT/$name" --version 2>/dev/null | grep -q "$kver\b"; then
			log "$name $kver is up to date"
			continue
		fi
		log "building $name $kver from hack/envtest's module..."
		start=$SECONDS
		(cd "$mod" && CGO_ENABLED=0 nice go build -trimpath -ldflags "-s -w $ldflags" -o "$OUT/.$name.tmp" "./cmd/$name") >&2
		mv "$OUT/.$name.tmp" "$OUT/$name"
		log "built $name in $((SECONDS - start))s"
	done
	local envtest
	envtest="$(nice "$ROOT/hack/envtest-bins.sh")"
	for name in kube-apiserver kubectl etcd; do
		cmp -s "$envtest/$name" "$OUT/$name" || { cp "$envtest/$name" "$OUT/.$name.tmp" && mv "$OUT/.$name.tmp" "$OUT/$name"; }
	done
}

# traefik builds bin/kube/traefik in hack/kube/traefik's module, unless the
# binary's build info already shows the pinned Traefik module version (its
# "mod" line: a package of a dependency built as a tool reports the
# dependency as its main module).
traefik() {
	local mod="$ROOT/hack/kube/traefik" ver start=$SECONDS
	ver="$(cd "$mod" && go mod edit -print | awk '{ sub(/^require[ \t]+/, "") } $1 == "github.com/traefik/traefik/v3" { print $2; exit }')"
	if [[ -x "$OUT/traefik" ]] && go version -m "$OUT/traefik" 2>/dev/null |
		awk -v want="$ver" '$1 == "mod" && $2 == "github.com/traefik/traefik/v3" { ok = $3 == want } END { exit !ok }'; then
		log "traefik $ver is up to date"
		return
	fi
	log "building traefik $ver from hack/kube/traefik's module..."
	(cd "$mod" && CGO_ENABLED=0 nice go build -trimpath \
		-ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$ver" \
		-o "$OUT/.traefik.tmp" github.com/traefik/traefik/v3/cmd/traefik) >&2
	mv "$OUT/.traefik.tmp" "$OUT/traefik"
	log "built traefik $ver in $((SECONDS - start))s"
}

kube
traefik
install coredns github.com/coredns/coredns "$COREDNS_VERSION" github.com/coredns/coredns
install local-path-provisioner github.com/rancher/local-path-provisioner "$LOCAL_PATH_VERSION" \
	github.com/rancher/local-path-provisioner "-X main.VERSION=$LOCAL_PATH_VERSION"
install crictl sigs.k8s.io/cri-tools "$CRICTL_VERSION" sigs.k8s.io/cri-tools/cmd/crictl \
	"-X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION"
(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$OUT/pause" ./hack/kube/pause) >&2

echo "$OUT"
