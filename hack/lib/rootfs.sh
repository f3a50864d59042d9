# shellcheck shell=bash
# rootfs.sh: helpers for hack/images.sh. Builds Debian root filesystems with
# debootstrap, caches them as tarballs and imports them into the Docker
# engine, so the compose stack's images can be made without any image
# registry. Source it; it defines functions only and changes no options.

# shellcheck source=hack/lib/apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

# log prints a progress line to stderr.
log() { printf '==> %s\n' "$*" >&2; }

# die prints an error and exits non-zero.
die() {
	printf 'error: %s\n' "$*" >&2
	exit 1
}

# require_docker exits with a clear message unless the Docker engine answers.
require_docker() {
	command -v docker >/dev/null 2>&1 || die "the docker command is not installed"
	local out
	if ! out="$(timeout 30 docker version --format '{{.Server.Version}}' 2>&1)"; then
		out="$(grep -v '^[[:space:]]*$' <<<"$out" | tr '\n' ' ')"
		die "the Docker engine does not answer (is dockerd running, and may you use it?): ${out% }"
	fi
	log "Docker engine ${out}"
}

# image_label prints label $2 of image $1; nothing if the image or the label is
# missing.
image_label() {
	docker image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null | sed 's/^<no value>$//' || true
}

# image_id prints the ID of image $1; nothing if it does not exist.
image_id() {
	docker image inspect --format '{{.Id}}' "$1" 2>/dev/null || true
}

# recipe_hash prints a short hash of the definitions of the functions named as
# arguments plus the values in RECIPE_EXTRA, so that a change to a recipe
# invalidates what was cached from it.
recipe_hash() {
	{
		declare -f "$@"
		printf '%s\n' "${RECIPE_EXTRA:-}"
	} | sha256sum | cut -c1-16
}

# ensure_debootstrap installs debootstrap with apt-get when it is missing.
ensure_debootstrap() {
	command -v debootstrap >/dev/null 2>&1 && return 0
	[[ $EUID -eq 0 ]] || die "debootstrap is missing and only root can install it (apt-get install debootstrap)"
	log "installing debootstrap with apt-get"
	apt_install debootstrap
}

# unmount_under unmounts, deepest first, whatever is mounted below directory $1
# (a failed debootstrap can leave proc and sys mounted in its target).
unmount_under() {
	local dir mnt
	dir="$(realpath -m "$1")"
	findmnt -rn -o TARGET | awk -v d="$dir/" 'index($0, d) == 1' | sort -r |
		while IFS= read -r mnt; do umount -l "$mnt" || true; done
}

# remove_tree deletes directory $1, never crossing into a mounted filesystem.
remove_tree() {
	[[ -e $1 ]] || return 0
	unmount_under "$1"
	rm -rf --one-file-system "$1"
}

# trim_rootfs drops from rootfs $1 what a container image does not need:
# package lists and caches, logs, documentation other than copyright files, man
# pages, message translations, and the host files debootstrap copies in (Docker provides hostname,
# hosts and resolv.conf at run time). It also installs a policy-rc.d, as the
# official Debian images do, so that packages installed later in a container
# do not try to start services.
trim_rootfs() {
	local r="$1"
	rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin "$r"/var/cache/apt/archives/*.deb \
		"$r"/var/cache/debconf/*-old "$r"/var/lib/dpkg/*-old \
		"$r"/usr/share/man/* "$r"/usr/share/info/* "$r"/usr/share/lintian/* \
		"$r"/usr/share/locale/*/LC_MESSAGES
	find "$r"/usr/share/doc -mindepth 1 ! -type d ! -name copyright -delete
	find "$r"/usr/share/doc -mindepth 1 -type d -empty -delete
	find "$r"/var/log -type f -delete
	rm -f "$r"/etc/hostname
	: >"$r"/etc/resolv.conf
	printf '#!/bin/sh\nexit 101\n' >"$r"/usr/sbin/policy-rc.d
	chmod 0755 "$r"/usr/sbin/policy-rc.d
	chmod 1777 "$r"/tmp
}

# debootstrap_minbase DIR [DEBOOTSTRAP-ARGS...] puts a minbase $DEBIAN_SUITE
# from $DEBIAN_MIRROR into DIR, keeping downloaded packages in
# $IMAGES_CACHE/debs for the next time. It runs the two stages separately so
# that dpkg can be told not to fsync every file it unpacks
# (force-unsafe-io), which matters on a disk with slow fsync.
debootstrap_minbase() {
	local dir="$1" unsafe=etc/dpkg/dpkg.cfg.d/zz-debootstrap-unsafe-io
	shift
	ensure_debootstrap
	mkdir -p "$IMAGES_CACHE/debs"
	debootstrap --foreign --variant=minbase --cache-dir="$IMAGES_CACHE/debs" "$@" \
		"$DEBIAN_SUITE" "$dir" "$DEBIAN_MIRROR"
	mkdir -p "$dir/${unsafe%/*}"
	echo force-unsafe-io >"$dir/$unsafe"
	chroot "$dir" /debootstrap/debootstrap --second-stage
	unmount_under "$dir"
	rm -f "$dir/$unsafe"
}

# chroot_apt_install DIR PACKAGE... installs packages, without recommends,
# into the Debian rootfs DIR with the rootfs's own apt, from the mirror in
# its sources.list. /proc and /dev are mounted, and the host's resolv.conf
# copied in, for the duration.
chroot_apt_install() {
	local dir="$1" rc=0
	shift
	mount -t proc proc "$dir/proc"
	mount --bind /dev "$dir/dev"
	cp /etc/resolv.conf "$dir/etc/resolv.conf"
	{
		chroot "$dir" apt-get update -q &&
			chroot "$dir" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
				--no-install-recommends -o Dpkg::Options::=--force-unsafe-io "$@"
	} || rc=$?
	unmount_under "$dir"
	: >"$dir/etc/resolv.conf"
	return "$rc"
}

# build_rootfs_tar NAME HASH MAKE makes the cached tarball
# $IMAGES_CACHE/NAME-HASH.tar unless it exists: the function MAKE fills an
# empty directory, its output going to $IMAGES_CACHE/NAME.log, then
# trim_rootfs slims it. Older tarballs of NAME are removed. Prints the
# tarball's path.
build_rootfs_tar() {
	local name="$1" hash="$2" make="$3"
	local tar="$IMAGES_CACHE/$name-$hash.tar"
	if [[ -f $tar ]]; then
		log "$name: rootfs tarball cached ($(basename "$tar"))"
		printf '%s\n' "$tar"
		return 0
	fi
	[[ $EUID -eq 0 ]] || die "$name: making a root filesystem needs root (debootstrap, chroot)"
	local dir="$IMAGES_CACHE/.rootfs-$name" logf="$IMAGES_CACHE/$name.log" start=$SECONDS
	remove_tree "$dir"
	mkdir -p "$dir"
	log "$name: making the rootfs (log: ${logf#"$ROOT"/})"
	# A background subshell, so that MAKE runs with errexit: in the
	# condition of the if, bash would ignore set -e.
	("$make" "$dir") >"$logf" 2>&1 &
	if ! wait $!; then
		tail -n 30 "$logf" >&2
		remove_tree "$dir"
		die "$name: making the rootfs failed; see ${logf#"$ROOT"/}"
	fi
	trim_rootfs "$dir"
	# /dev is provided by the container runtime; device nodes in an image
	# layer only cause trouble (fuse-overlayfs, rootless engines).
	tar -C "$dir" --numeric-owner --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
		-cf "$tar.tmp" .
	mv "$tar.tmp" "$tar"
	remove_tree "$dir"
	find "$IMAGES_CACHE" -maxdepth 1 -name "$name-*.tar" ! -name "$(basename "$tar")" -delete
	log "$name: cached $(basename "$tar") ($(du -h "$tar" | cut -f1)) in $((SECONDS - start))s"
	printf '%s\n' "$tar"
}

# import_rootfs TAG TARBALL HASH [INSTRUCTION...] imports TARBALL as image TAG
# with the given Dockerfile instructions and a label recording HASH. It skips
# the import when TAG already exists with that label. Instructions that
# docker import --change accepts are applied by the import; the others
# (STOPSIGNAL, HEALTHCHECK on Docker 20.10) by a docker build on top of it.
import_rootfs() {
	local tag="$1" tar="$2" hash="$3"
	shift 3
	if [[ "$(image_label "$tag" "$RECIPE_LABEL")" == "$hash" ]]; then
		log "$tag: up to date"
		return 0
	fi
	local args=() later=() c old id
	for c in "$@"; do
		case "${c%% *}" in
		STOPSIGNAL | HEALTHCHECK) later+=("$c") ;;
		*) args+=(--change "$c") ;;
		esac
	done
	log "$tag: docker import"
	old="$(image_id "$tag")"
	if ((${#later[@]} == 0)); then
		docker import "${args[@]}" --change "LABEL $RECIPE_LABEL=$hash" \
			--message "hack/images.sh: debootstrap $DEBIAN_SUITE rootfs" - "$tag" <"$tar" >/dev/null
	else
		local out
		id="$(docker import "${args[@]}" --message "hack/images.sh: debootstrap $DEBIAN_SUITE rootfs" - <"$tar")"
		if ! out="$(printf '%s\n' "FROM $id" "${later[@]}" "LABEL $RECIPE_LABEL=$hash" |
			DOCKER_BUILDKIT=0 docker build -q --force-rm -t "$tag" - 2>&1)"; then
			die "$tag: docker build of ${later[*]} on the imported rootfs failed: $out"
		fi
	fi
	drop_if_dangling "$old"
}

# drop_if_dangling removes image ID $1 if no tag refers to it any more.
drop_if_dangling() {
	[[ -n $1 ]] || return 0
	if [[ "$(docker image inspect --format '{{len .RepoTags}}' "$1" 2>/dev/null)" == 0 ]]; then
		docker image rm "$1" >/dev/null 2>&1 || true
	fi
}
