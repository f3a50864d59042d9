#!/usr/bin/env bash
# down.sh takes the local cluster down (make e2e-down) and removes all that
# up.sh made: the pods (through the node's own containerd, while it still
# runs), the processes, every mount under $STATE and $RUN (overlay
# snapshots, pod volumes, pod network namespaces), the network namespace
# with its veth (and so the iptables rules inside it), the cgroups under
# $CGROUP_ROOT and the state directories. Running it again, or with no
# cluster up, is fine. The host's iptables are never touched: up.sh adds
# no rule there.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/kube/lib.sh
source "$HERE/lib.sh"

# stop <name>: SIGTERM the component's recorded pid, SIGKILL after 10 s.
stop() {
	local pid i
	pid="$(cat "$RUN/$1.pid" 2>/dev/null)" || return 0
	rm -f "$RUN/$1.pid"
	[[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.2
	done
	log "$1 ($pid) did not stop in 10s; killing it"
	kill -KILL "$pid" 2>/dev/null
}

# cgroup_pids prints every pid in a cgroup under $CGROUP_ROOT: the pods'
# processes, which only the node's containerd and runc started.
cgroup_pids() {
	find /sys/fs/cgroup/pids"$CGROUP_ROOT" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u
}

# shim_pids prints the pids of the containerd-shim processes that our
# containerd started: one of their arguments is our socket's path.
shim_pids() {
	local pid
	for pid in $(grep -laxzF -- "$RUN/containerd.sock" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3); do
		[[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == containerd-shim* ]] && echo "$pid"
	done
}

stop kubelet
if pid_alive containerd && [[ -x "$BIN/crictl" ]]; then
	# Stop and remove the pods while containerd can still do it cleanly.
	timeout 60 "$BIN/crictl" --runtime-endpoint "unix://$RUN/containerd.sock" --timeout 30s rmp -fa >/dev/null 2>&1 ||
		log "crictl rmp -fa failed; killing what is left"
fi
for c in kube-proxy kube-scheduler kube-controller-manager kube-apiserver etcd containerd; do
	stop "$c"
done
for pid in $(cgroup_pids) $(shim_pids); do
	kill -KILL "$pid" 2>/dev/null
done

# Unmount, deepest first, everything mounted under the state directories.
for dir in "$RUN" "$STATE"; do
	findmnt -rn -o TARGET | awk -v d="$dir/" 'index($0 "/", d) == 1' | sort -r | while read -r m; do
		umount "$m" 2>/dev/null || umount -l "$m"
	done
done

if [[ -e "/run/netns/$NETNS" ]]; then
	ip netns del "$NETNS"
fi
ip link del "$VETH_HOST" 2>/dev/null
# ip netns add bind-mounts /run/netns onto itself the first time; undo that
# when no namespace is left in it (ours or anyone's).
if mountpoint -q /run/netns && [[ -z "$(ls -A /run/netns)" ]]; then
	umount /run/netns && rmdir /run/netns
fi

# Remove the cgroups, children first, in every hierarchy.
for h in /sys/fs/cgroup/*/; do
	[[ -d "$h${CGROUP_ROOT#/}" ]] || continue
	find "$h${CGROUP_ROOT#/}" -depth -type d -exec rmdir {} + 2>/dev/null
done

rm -rf "$STATE" "$RUN"

# Report what is left, if anything.
left=0
[[ -z "$(cgroup_pids)$(shim_pids)" ]] || { log "processes left: $(cgroup_pids) $(shim_pids)"; left=1; }
findmnt -rn -o TARGET | grep -qE "^($RUN|$STATE)(/|$)" && { log "mounts left under $RUN or $STATE"; left=1; }
[[ ! -e "/run/netns/$NETNS" ]] || { log "netns $NETNS left"; left=1; }
ip route | grep -qE "^($POD_CIDR|$SERVICE_CIDR) " && { log "routes to $POD_CIDR or $SERVICE_CIDR left"; left=1; }
ip link show "$VETH_HOST" >/dev/null 2>&1 && { log "veth $VETH_HOST left"; left=1; }
ls -d /sys/fs/cgroup/*"$CGROUP_ROOT" >/dev/null 2>&1 && { log "cgroups left under $CGROUP_ROOT"; left=1; }
((left == 0)) && log "down: nothing left"
exit "$left"
