#!/usr/bin/env bash
# images.sh packs the local cluster's own images, FROM scratch with the
# classic builder of the local Docker engine, and saves each as a tarball
# in bin/kube/images/ for `ctr -n k8s.io images import` (up.sh does that):
#
#	pause                   bin/kube/pause, the pod sandbox
#	busybox                 Debian's busybox-static, with its applets
#	                        (local-path-provisioner's helper pods, test pods)
#	coredns                 bin/kube/coredns
#	local-path-provisioner  bin/kube/local-path-provisioner
#	traefik                 bin/kube/traefik, the Ingress controller
#	                        (hack/kube/ingress.yaml)
#
# An image is packed again only when the binary in it changed (its sha256 is
# kept beside the tarball). Needs hack/kube/bins.sh's output; prints the
# directory of the tarballs on stdout.
set -euo pipefail

# shellcheck source=hack/kube/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
OUTDIR="$BIN/images"
mkdir -p "$OUTDIR"

if [[ ! -x /bin/busybox ]] || ! file -L /bin/busybox | grep -q 'statically linked'; then
	apt_install busybox-static
fi

# pack <name> <tag> <binary> <Dockerfile lines...>
pack() {
	local name="$1" tag="$2" bin="$3" sum ctx
	shift 3
	sum="$(sha256sum "$bin" | cut -d' ' -f1)"
	if [[ -f "$OUTDIR/$name.tar" && "$(cat "$OUTDIR/$name.sha256" 2>/dev/null)" == "$sum" ]]; then
		return
	fi
	log "packing $tag"
	ctx="$(mktemp -d)"
	cp "$bin" "$ctx/"
	printf '%s\n' FROM\ scratch "$@" >"$ctx/Dockerfile"
	local out
	if ! out="$(DOCKER_BUILDKIT=0 docker build -q -t "${tag#docker.io/}" "$ctx" 2>&1)"; then
		echo "$out" >&2
		exit 1
	fi
	docker save "${tag#docker.io/}" -o "$OUTDIR/.$name.tar"
	mv "$OUTDIR/.$name.tar" "$OUTDIR/$name.tar"
	echo "$sum" >"$OUTDIR/$name.sha256"
	rm -rf "$ctx"
}

pack pause "$PAUSE_IMAGE" "$BIN/pause" \
	'COPY pause /pause' 'USER 65535:65535' 'ENTRYPOINT ["/pause"]'
pack busybox "$BUSYBOX_IMAGE" /bin/busybox \
	'COPY busybox /bin/busybox' 'RUN ["/bin/busybox", "--install", "-s", "/bin"]' \
	'ENV PATH=/bin' 'CMD ["/bin/sh"]'
pack coredns "$COREDNS_IMAGE" "$BIN/coredns" \
	'COPY coredns /coredns' 'EXPOSE 53 53/udp' 'ENTRYPOINT ["/coredns"]'
pack local-path-provisioner "$LOCAL_PATH_IMAGE" "$BIN/local-path-provisioner" \
	'COPY local-path-provisioner /local-path-provisioner' 'ENTRYPOINT ["/local-path-provisioner"]'

pack traefik docker.io/kvstore-local/traefik:e2e "$BIN/traefik" \
	'COPY traefik /traefik' 'USER 65532:65532' 'EXPOSE 8000 8443' 'ENTRYPOINT ["/traefik"]'

echo "$OUTDIR"
