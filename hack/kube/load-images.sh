#!/usr/bin/env bash
# load-images.sh imports images from the local Docker engine into the local
# cluster's containerd (namespace k8s.io, where the kubelet looks), so that
# pods can run them without a registry:
#
#	hack/kube/load-images.sh kvstore/kvstore:local kvstore/operator:local
#
# An image is imported again only when its Docker image ID differs from the
# one imported last (recorded under $RUN/images/, so a new cluster imports
# everything again). Concurrent runs take turns. Needs the cluster up.
set -euo pipefail

# shellcheck source=hack/kube/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
(($# > 0)) || die "usage: load-images.sh <image>..."
pid_alive containerd || die "the cluster's containerd is not running: run hack/kube/up.sh"

mkdir -p "$RUN/images"
exec 9>"$RUN/images/.lock"
flock 9

todo=()
for image in "$@"; do
	id="$(docker image inspect -f '{{.Id}}' "$image")" || die "no image $image in Docker: run hack/images.sh --operator"
	stamp="$RUN/images/$(echo "$image" | tr '/:' '__').id"
	if [[ "$(cat "$stamp" 2>/dev/null)" == "$id" ]] &&
		ctr_ images ls -q "name==docker.io/$image" | grep -q .; then
		continue
	fi
	todo+=("$image")
	echo "$id" >"$stamp.new"
done
((${#todo[@]} > 0)) || exit 0

log "importing ${todo[*]}"
docker save "${todo[@]}" | ctr_ images import - >/dev/null
for image in "${todo[@]}"; do
	stamp="$RUN/images/$(echo "$image" | tr '/:' '__').id"
	mv "$stamp.new" "$stamp"
done
