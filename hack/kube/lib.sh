# shellcheck shell=bash
# lib.sh holds what up.sh, down.sh and images.sh share: where the local
# cluster keeps its state, its names and addresses. Sourced, not run.
#
# There is one local cluster per machine: the network namespace, the veth,
# the addresses and the state directories below are fixed names.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="$ROOT/bin/kube"
# shellcheck source=hack/lib/apt.sh
source "$ROOT/hack/lib/apt.sh"

STATE="${KUBE_STATE:-/var/lib/kvstore-kube}" # etcd, containerd's root, kubelet's root, PKI, logs
RUN=/run/kvstore-kube                        # sockets, containerd's state, runc's root, pid files
KUBECONFIG_OUT="$STATE/admin.kubeconfig"

NETNS=kvstore-kube # ip netns name; processes enter it with nsenter --net
VETH_HOST=kvk-host # the host's end of the veth pair
VETH_NODE=kvk-node # the node's end, inside $NETNS
HOST_IP=10.213.0.1 # on $VETH_HOST (/30)
NODE_IP=10.213.0.2 # on $VETH_NODE: the node's InternalIP, the API server's address
POD_CIDR=10.214.0.0/24
SERVICE_CIDR=10.215.0.0/24
API_SERVICE_IP=10.215.0.1
DNS_IP=10.215.0.10
CLUSTER_DOMAIN=cluster.local
NODE_NAME=e2e
CGROUP_ROOT=/kvstore-kube # kubelet's cgroupRoot, in every cgroup v1 hierarchy

# Local images (no registry can be reached; pods use IfNotPresent or Never).
PAUSE_IMAGE=docker.io/kvstore-local/pause:e2e
BUSYBOX_IMAGE=docker.io/kvstore-local/busybox:e2e
COREDNS_IMAGE=docker.io/kvstore-local/coredns:e2e
LOCAL_PATH_IMAGE=docker.io/kvstore-local/local-path-provisioner:e2e

COMPONENTS=(etcd containerd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)

log() { echo "kube: $*" >&2; }
die() {
	log "$*"
	exit 1
}

# innet runs a command inside the node's network namespace, in the host's
# mount namespace (kubelet, containerd and runc must see each other's mounts).
innet() { nsenter --net="/run/netns/$NETNS" "$@"; }

ctr_() { "$(command -v ctr)" --address "$RUN/containerd.sock" -n k8s.io "$@"; }
kubectl_() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_OUT" "$@"; }

# pid_alive <name>: the component's recorded pid is a live process.
pid_alive() {
	local pid
	pid="$(cat "$RUN/$1.pid" 2>/dev/null)" || return 1
	[[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null
}
