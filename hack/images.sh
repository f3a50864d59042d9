#!/usr/bin/env bash
# images.sh builds every image the compose stack needs without any image
# registry, from Debian's package mirror, the host's Go toolchain and this
# repository, and tags them:
#
#   kvstore-local/debian:bookworm  debootstrap --variant=minbase rootfs (docker import)
#   kvstore-local/nginx:bookworm   Debian's nginx (ssl, http2) added to a copy of that
#                                  rootfs, imported on its own; non-root: user nginx
#                                  101:101, ports 8080/8443, STOPSIGNAL SIGQUIT
#   kvstore-local/golang:1.26      the Debian base plus the host's GOROOT, offline
#                                  (GOFLAGS=-mod=vendor GOPROXY=off CGO_ENABLED=0)
#   kvstore/kvstore:local          the server, from ./Dockerfile on scratch (tag: $KVSTORE_IMAGE)
#   kvstore/operator:local         with --operator: the operator, target "operator" of
#                                  ./Dockerfile on scratch (tag: $OPERATOR_IMAGE)
#
# Rootfs tarballs and downloaded .debs are cached in bin/images/, and an
# image is imported or built again only when its recipe, recorded in a
# label, has changed. The server image is always rebuilt, from a temporary
# context holding the git-tracked and untracked-but-not-ignored files plus a
# vendor/ directory, and Docker's layer cache keeps that quick. Uses the
# classic builder unless DOCKER_BUILDKIT says otherwise; docker-compose v1
# builds with the classic builder too. Needs root for the first run
# (debootstrap); later runs need only the Docker engine.
set -euo pipefail
shopt -s inherit_errexit

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=hack/lib/rootfs.sh
source "$ROOT/hack/lib/rootfs.sh"

IMAGES_CACHE="$ROOT/bin/images"
DEBIAN_SUITE=bookworm
DEBIAN_MIRROR=http://deb.debian.org/debian
RECIPE_LABEL=dev.kvstore.images.recipe

DEBIAN_TAG=kvstore-local/debian:bookworm
NGINX_TAG=kvstore-local/nginx:bookworm
GO_TAG=kvstore-local/golang:1.26
GO_WANT=go1.26 # the toolchain copied into $GO_TAG must be a $GO_WANT.x
KVSTORE_IMAGE="${KVSTORE_IMAGE:-kvstore/kvstore:local}"
OPERATOR_IMAGE="${OPERATOR_IMAGE:-kvstore/operator:local}"
export DOCKER_BUILDKIT="${DOCKER_BUILDKIT:-0}"

BASE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
NGINX_PACKAGES=(nginx ca-certificates)

# make_debian fills rootfs $1 with a minbase Debian.
make_debian() {
	debootstrap_minbase "$1"
}

# make_nginx fills rootfs $1 with the Debian base (the cached tarball
# $DEBIAN_TARBALL) plus Debian's nginx, and makes nginx run as the non-root
# user nginx (uid/gid 101, as in the official nginx images) with the
# nginx.conf that compose mounts over /etc/nginx/nginx.conf: the
# directories nginx writes are owned by 101, logs go to the container's
# stdout/stderr, there is no default site, and the shipped nginx.conf keeps
# its pid file in /tmp. Installing into a copy of the base takes seconds; a
# second debootstrap --include=nginx would take minutes here.
make_nginx() {
	local r="$1" id
	tar -C "$r" -xf "$DEBIAN_TARBALL"
	chroot_apt_install "$r" "${NGINX_PACKAGES[@]}"
	for id in group passwd; do
		if chroot "$r" getent "$id" 101; then
			die "nginx rootfs: id 101 is already taken in /etc/$id"
		fi
	done
	chroot "$r" groupadd --system --gid 101 nginx
	chroot "$r" useradd --system --uid 101 --gid 101 --no-create-home \
		--home-dir /var/cache/nginx --shell /usr/sbin/nologin --comment "nginx user" nginx
	# The temp directories compiled into Debian's nginx exist beforehand, so
	# that nginx need not create them: on a read-only root it could not.
	mkdir -p "$r"/var/cache/nginx "$r"/var/log/nginx \
		"$r"/var/lib/nginx/{body,proxy,fastcgi,uwsgi,scgi}
	chmod 0700 "$r"/var/lib/nginx/{body,proxy,fastcgi,uwsgi,scgi}
	find "$r"/var/log/nginx -mindepth 1 -delete
	chown -R 101:101 "$r"/var/cache/nginx "$r"/var/lib/nginx "$r"/var/log/nginx
	chmod 0755 "$r"/var/cache/nginx "$r"/var/lib/nginx "$r"/var/log/nginx
	ln -s /dev/stdout "$r"/var/log/nginx/access.log
	ln -s /dev/stderr "$r"/var/log/nginx/error.log
	rm -f "$r"/etc/nginx/sites-enabled/default "$r"/etc/nginx/sites-available/default
	sed -i -e '/^user /d' -e 's|^pid .*|pid /tmp/nginx.pid;|' "$r"/etc/nginx/nginx.conf
}

# debian_image makes $DEBIAN_TAG and sets DEBIAN_TARBALL and DEBIAN_HASH.
debian_image() {
	DEBIAN_HASH="$(RECIPE_EXTRA="$DEBIAN_SUITE $DEBIAN_MIRROR" recipe_hash make_debian debootstrap_minbase trim_rootfs)"
	DEBIAN_TARBALL="$(build_rootfs_tar debian-"$DEBIAN_SUITE" "$DEBIAN_HASH" make_debian)"
	import_rootfs "$DEBIAN_TAG" "$DEBIAN_TARBALL" "$DEBIAN_HASH" \
		"ENV PATH=$BASE_PATH" \
		'CMD ["bash"]'
}

# nginx_image makes $NGINX_TAG and checks that its nginx has the ssl and
# http_v2 modules.
nginx_image() {
	local hash tar out
	hash="$(RECIPE_EXTRA="$DEBIAN_HASH ${NGINX_PACKAGES[*]}" recipe_hash make_nginx chroot_apt_install trim_rootfs)"
	tar="$(build_rootfs_tar nginx-"$DEBIAN_SUITE" "$hash" make_nginx)"
	import_rootfs "$NGINX_TAG" "$tar" "$hash" \
		"ENV PATH=$BASE_PATH" \
		'CMD ["nginx","-g","daemon off;"]' \
		'USER 101:101' \
		'EXPOSE 8080 8443' \
		'STOPSIGNAL SIGQUIT'
	out="$(docker run --rm --network none "$NGINX_TAG" nginx -V 2>&1)" || die "$NGINX_TAG: nginx -V failed: $out"
	grep -q -- '--with-http_ssl_module' <<<"$out" || die "$NGINX_TAG: nginx lacks the ssl module: $out"
	grep -q -- '--with-http_v2_module' <<<"$out" || die "$NGINX_TAG: nginx lacks the http_v2 module: $out"
	log "$NGINX_TAG: $(head -n1 <<<"$out" | sed 's/^nginx version: //'), ssl and http_v2 modules present"
}

# golang_image makes $GO_TAG: the Debian base plus the host's GOROOT, less
# what building Go code does not need. Old build-cache images of the app
# that descend from a replaced $GO_TAG stay behind (docker image prune).
golang_image() {
	local goroot gover base_id dockerfile hash old ctx e entries=()
	goroot="$(go env GOROOT)"
	gover="$(go env GOVERSION)"
	[[ $gover == "$GO_WANT" || $gover == "$GO_WANT".* ]] ||
		die "$GO_TAG needs a $GO_WANT.x toolchain on the host; go env GOVERSION says $gover"
	base_id="$(image_id "$DEBIAN_TAG")"
	dockerfile="FROM $DEBIAN_TAG
COPY go /usr/local/go
ENV GOPATH=/go \\
    PATH=/go/bin:/usr/local/go/bin:$BASE_PATH \\
    GOTOOLCHAIN=local \\
    GOFLAGS=-mod=vendor \\
    GOPROXY=off \\
    CGO_ENABLED=0
WORKDIR /go
"
	hash="$(printf '%s\n' "$dockerfile" "$gover" "$goroot" "$base_id" "$(sha256sum "$goroot/bin/go")" \
		"$(declare -f golang_image)" | sha256sum | cut -c1-16)"
	if [[ "$(image_label "$GO_TAG" "$RECIPE_LABEL")" == "$hash" ]]; then
		log "$GO_TAG: up to date"
		return 0
	fi
	log "$GO_TAG: building from $DEBIAN_TAG and $goroot ($gover)"
	old="$(image_id "$GO_TAG")"
	# The context: the Dockerfile and GOROOT as go/, hard-linked when GOROOT
	# is on the same filesystem (only links are removed below), copied
	# otherwise. Left out is what building Go code never reads: Go's own
	# tests (test/, std's *_test.go and testdata), api/, and the sources of
	# the toolchain's commands (src/cmd; pkg/tool has the binaries that go
	# build and go vet run). That is 70% of GOROOT's files, and Docker's
	# fuse-overlayfs driver walks every file of the image for each build
	# step it commits, so every step of the app build gets faster.
	ctx="$(mktemp -d "$IMAGES_CACHE/.context-golang.XXXXXX")"
	CLEANUP+=("$ctx")
	printf '%s' "$dockerfile" >"$ctx/Dockerfile"
	mkdir "$ctx/go"
	for e in "$goroot"/* "$goroot"/.[!.]*; do
		case "${e##*/}" in
		test | api | '.[!.]*') ;;
		*) entries+=("${e##*/}") ;;
		esac
	done
	if ! (cd "$goroot" && cp -al "${entries[@]}" "$ctx/go/") 2>/dev/null; then
		rm -rf "$ctx/go" && mkdir "$ctx/go"
		(cd "$goroot" && cp -a "${entries[@]}" "$ctx/go/")
	fi
	rm -rf "$ctx/go/src/cmd"
	find "$ctx/go/src" -name testdata -type d -prune -exec rm -rf {} +
	find "$ctx/go/src" -name '*_test.go' -type f -delete
	docker build -q --force-rm --label "$RECIPE_LABEL=$hash" -t "$GO_TAG" "$ctx" >/dev/null
	rm -rf "$ctx"
	drop_if_dangling "$old"
	# Every package of the standard library must still load, embedded
	# files included.
	local bad
	bad="$(docker run --rm --network none "$GO_TAG" \
		go list -e -f '{{if or .Error .DepsErrors}}{{.ImportPath}}: {{.Error}} {{.DepsErrors}}{{end}}' std)"
	[[ -z $bad ]] || die "$GO_TAG: the trimmed GOROOT lacks files:"$'\n'"$bad"
	docker run --rm --network none "$GO_TAG" go version >&2
}

# app_image builds image $1 from target $2 of ./Dockerfile with the binaries
# $3 ("server", "server operator"), offline.
app_image() {
	local image="$1" target="$2" binaries="$3" ctx version revision old
	ctx="$(mktemp -d "$IMAGES_CACHE/.context-app.XXXXXX")"
	CLEANUP+=("$ctx")
	cd "$ROOT"
	# Tracked files that still exist plus untracked, not ignored files:
	# the working tree as it would be committed. git ls-files does not touch
	# the index, nor does git status with GIT_OPTIONAL_LOCKS=0.
	git ls-files -z --cached --others --exclude-standard |
		while IFS= read -r -d '' f; do
			if [[ -e $f || -L $f ]]; then printf '%s\0' "$f"; fi
		done |
		tar -c --null --no-recursion -T - | tar -C "$ctx" -x
	log "$image: go mod vendor into the build context"
	(cd "$ctx" && go mod vendor -o "$ctx/vendor")
	# The third-party packages the binaries import, compiled in a cached
	# layer before the sources are copied (not all of vendor/: most of
	# client-go is never imported).
	(cd "$ctx" && go list -mod=vendor -deps -f '{{if not .Standard}}{{with .Module}}{{if not .Main}}{{$.ImportPath}}{{end}}{{end}}{{end}}' \
		./cmd/server ./cmd/operator | sort -u >"$ctx/vendor/prebuild.txt")
	version="$(git describe --tags --always 2>/dev/null || echo dev)"
	if [[ -n "$(GIT_OPTIONAL_LOCKS=0 git status --porcelain --untracked-files=no 2>/dev/null)" ]]; then
		version+=-dirty
	fi
	revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
	old="$(image_id "$image")"
	log "$image: docker build --target $target (version $version)"
	docker build --force-rm --target "$target" \
		--build-arg BINARIES="$binaries" \
		--build-arg GO_IMAGE="$GO_TAG" \
		--build-arg RUNTIME_IMAGE=scratch \
		--build-arg VERSION="$version" \
		--build-arg REVISION="$revision" \
		-t "$image" "$ctx" >&2
	rm -rf "$ctx"
	drop_if_dangling "$old"
}

# cleanup removes temporary build contexts and unmounts whatever an
# interrupted chroot left mounted under a rootfs being made.
CLEANUP=()
cleanup() {
	local d
	for d in "$IMAGES_CACHE"/.rootfs-*; do
		if [[ -d $d ]]; then unmount_under "$d"; fi
	done
	if ((${#CLEANUP[@]})); then rm -rf "${CLEANUP[@]}"; fi
}

main() {
	local start=$SECONDS tag bytes
	require_docker
	mkdir -p "$IMAGES_CACHE"
	trap cleanup EXIT
	exec 9>"$IMAGES_CACHE/.lock"
	flock -n 9 || {
		log "waiting for another hack/images.sh to finish"
		flock 9
	}
	debian_image
	nginx_image
	golang_image
	app_image "$KVSTORE_IMAGE" server server
	local tags=("$DEBIAN_TAG" "$NGINX_TAG" "$GO_TAG" "$KVSTORE_IMAGE")
	if [[ ${1:-} == --operator ]]; then
		app_image "$OPERATOR_IMAGE" operator "server operator"
		tags+=("$OPERATOR_IMAGE")
	fi
	echo
	printf '%-34s %10s  %s\n' IMAGE SIZE ID
	for tag in "${tags[@]}"; do
		bytes="$(docker image inspect --format '{{.Size}}' "$tag")"
		awk -v t="$tag" -v b="$bytes" -v id="$(image_id "$tag" | cut -c8-19)" \
			'BEGIN { printf "%-34s %8.1fMB  %s\n", t, b / 1e6, id }'
	done
	log "done in $((SECONDS - start))s"
}

main "$@"
