#!/usr/bin/env bash
# restart.sh stops the named components of the running local cluster and
# starts them again with the same command lines (read from /proc before
# they stop), logging to the same files:
#
#	hack/kube/restart.sh kubelet containerd
#
# Components stop in the order given and start in the reverse order. A
# stopped containerd leaves its containers running (their shims keep
# them); restart.sh kills them, as a reboot of the node would, so that the
# kubelet has to start every pod again.
set -euo pipefail

# shellcheck source=hack/kube/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
(($# > 0)) || die "usage: restart.sh <component>... (of: ${COMPONENTS[*]})"

declare -A argv
for c in "$@"; do
	pid_alive "$c" || die "$c is not running: run hack/kube/up.sh"
	argv[$c]="$(tr '\0' '\n' <"/proc/$(cat "$RUN/$c.pid")/cmdline")"
done

for c in "$@"; do
	pid="$(cat "$RUN/$c.pid")"
	log "stopping $c ($pid)"
	kill -TERM "$pid"
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	if [[ "$c" == containerd ]]; then
		# The pods' processes and their shims (see down.sh).
		find /sys/fs/cgroup/pids"$CGROUP_ROOT" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
		for p in $(grep -laxzF -- "$RUN/containerd.sock" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3); do
			[[ "$(cat "/proc/$p/comm" 2>/dev/null)" == containerd-shim* ]] && kill -KILL "$p" 2>/dev/null
		done
	fi
done

for ((i = $# - 1; i >= 0; i--)); do
	c="${@:i+1:1}"
	mapfile -t cmd <<<"${argv[$c]}"
	log "starting $c"
	nsenter --net="/run/netns/$NETNS" "${cmd[@]}" </dev/null >>"$STATE/logs/$c.log" 2>&1 &
	echo $! >"$RUN/$c.pid"
	if [[ "$c" == containerd ]]; then
		# The kubelet exits at once when the CRI socket does not answer
		# (it took containerd 1.7 s to boot on a loaded machine), so what
		# starts after containerd waits until it serves.
		for ((j = 0; j < 300; j++)); do
			ctr_ version >/dev/null 2>&1 && break
			sleep 0.2
		done
		ctr_ version >/dev/null 2>&1 || die "containerd did not answer on $RUN/containerd.sock within 60 s (log: $STATE/logs/containerd.log)"
	fi
done
sleep 2
for c in "$@"; do
	pid_alive "$c" || die "$c exited right after its restart (log: $STATE/logs/$c.log)"
done
log "restarted $*"
