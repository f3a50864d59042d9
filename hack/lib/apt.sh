# shellcheck shell=bash
# apt.sh: apt_install, the one way the project's scripts install Debian
# packages. Sourced, not run.
#
# Several scripts install packages and `make test` runs them in parallel
# (test packages bring up the compose images and the local cluster at the
# same time). apt-get's own lock on /var/lib/apt/lists fails at once rather
# than wait (DPkg::Lock::Timeout covers only dpkg's lock), so the project's
# own apt runs take turns on a file lock, and a run that still meets a lock
# held by someone else's apt-get is tried again, for up to 10 minutes.

# apt_install PACKAGE... installs the packages, without recommends. Needs
# root (or sudo, when there is one).
apt_install() {
	local sudo=() try
	[[ $EUID -eq 0 ]] || sudo=(sudo)
	(
		flock -w 1200 9 || { echo "apt.sh: waited 20 minutes for another apt run of this project" >&2; exit 1; }
		for try in $(seq 120); do
			if "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq >&2 &&
				"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 \
					install -y -qq --no-install-recommends "$@" >&2; then
				exit 0
			fi
			echo "apt.sh: apt-get failed (try $try; another apt-get may hold its lock); trying again in 5s" >&2
			sleep 5
		done
		exit 1
	) 9>/tmp/kvstore-apt.lock
}
