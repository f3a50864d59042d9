#!/usr/bin/env bash
# up.sh brings up the local single-node Kubernetes cluster (make e2e-up) and
# prints the path of its admin kubeconfig on stdout:
#
#	export KUBECONFIG="$(hack/kube/up.sh)"
#
# The node's processes (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubelet, kube-proxy and a containerd of its own) run in
# the network namespace $NETNS, entered with nsenter --net so that they keep
# the host's mount namespace. A veth pair joins it to the host, and routes
# over it let the host reach the API server, pod IPs and ClusterIPs; CNI's
# and kube-proxy's iptables rules stay inside the namespace. Binaries come
# from hack/kube/bins.sh, images from hack/kube/images.sh; both are cached
# in bin/kube/, so a second bring-up takes seconds.
#
# When the cluster is already up, up.sh only prints the kubeconfig; when a
# part of one is left, it runs down.sh first. Everything it creates is
# listed in down.sh, which removes it.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/kube/lib.sh
source "$HERE/lib.sh"
# shellcheck source=hack/kube/pki.sh
source "$HERE/pki.sh"

[[ $EUID == 0 ]] || die "needs root (network namespace, mounts, cgroups)"
start=$SECONDS

# install_debs installs what the node needs from Debian, when missing.
install_debs() {
	local missing=() cmd pkg
	for cmd_pkg in containerd:containerd runc:runc ip:iproute2 iptables:iptables \
		conntrack:conntrack socat:socat nsenter:util-linux openssl:openssl envsubst:gettext-base; do
		cmd="${cmd_pkg%%:*}" pkg="${cmd_pkg#*:}"
		command -v "$cmd" >/dev/null || missing+=("$pkg")
	done
	[[ -x /usr/lib/cni/bridge ]] || missing+=(containernetworking-plugins)
	((${#missing[@]} == 0)) && return
	log "installing ${missing[*]} from Debian"
	apt_install "${missing[@]}"
}

# healthy: every component's process is alive and the API server is ready.
healthy() {
	local c
	for c in "${COMPONENTS[@]}"; do pid_alive "$c" || return 1; done
	kubectl_ get --raw /readyz >/dev/null 2>&1
}

# spawn <name> <command...>: start a component inside the namespace, in the
# background, logging to $STATE/logs/<name>.log; its pid goes to $RUN.
spawn() {
	local name="$1"
	shift
	nsenter --net="/run/netns/$NETNS" "$@" </dev/null >"$STATE/logs/$name.log" 2>&1 &
	echo $! >"$RUN/$name.pid"
}

# wait_for <what> <seconds> <command...>: poll the command until it succeeds.
wait_for() {
	local what="$1" deadline=$((SECONDS + $2))
	shift 2
	until "$@" >/dev/null 2>&1; do
		((SECONDS < deadline)) || die "timed out waiting for $what; logs in $STATE/logs/"
		local c
		for c in "${COMPONENTS[@]}"; do
			if [[ -f "$RUN/$c.pid" ]] && ! pid_alive "$c"; then
				tail -n 20 "$STATE/logs/$c.log" >&2
				die "$c exited while waiting for $what; log: $STATE/logs/$c.log"
			fi
		done
		sleep 0.2
	done
}

network() {
	ip netns add "$NETNS"
	ip link add "$VETH_HOST" type veth peer name "$VETH_NODE"
	ip link set "$VETH_NODE" netns "$NETNS"
	ip addr add "$HOST_IP/30" dev "$VETH_HOST"
	ip link set "$VETH_HOST" up
	innet ip link set lo up
	innet ip addr add "$NODE_IP/30" dev "$VETH_NODE"
	innet ip link set "$VETH_NODE" up
	innet ip route add default via "$HOST_IP"
	innet sysctl -qw net.ipv4.ip_forward=1
	ip route add "$POD_CIDR" via "$NODE_IP" dev "$VETH_HOST"
	ip route add "$SERVICE_CIDR" via "$NODE_IP" dev "$VETH_HOST"
}

configs() {
	mkdir -p "$STATE"/{logs,cni/net.d,cni/ipam,local-path,pod-logs} "$RUN"
	cat >"$STATE/containerd.toml" <<EOF
version = 2
root = "$STATE/containerd"
state = "$RUN/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "$RUN/containerd.sock"
[ttrpc]
  address = "$RUN/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$STATE/containerd-opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        Root = "$RUN/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni/net.d"
EOF
	cat >"$STATE/cni/net.d/10-kvstore-e2e.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "kvstore-e2e",
  "plugins": [
    {
      "type": "bridge", "bridge": "kvk0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
      "ipam": {"type": "host-local", "dataDir": "$STATE/cni/ipam", "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}]}
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
	echo "nameserver $DNS_IP" >"$STATE/resolv.conf"
	cat >"$STATE/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $STATE/pki/ca.crt}
authorization: {mode: AlwaysAllow}
tlsCertFile: $STATE/pki/kubelet.crt
tlsPrivateKeyFile: $STATE/pki/kubelet.key
containerRuntimeEndpoint: unix://$RUN/containerd.sock
cgroupDriver: cgroupfs
cgroupRoot: $CGROUP_ROOT
failCgroupV1: false
failSwapOn: false
clusterDNS: [$DNS_IP]
clusterDomain: $CLUSTER_DOMAIN
resolvConf: $STATE/resolv.conf
podLogsDir: $STATE/pod-logs
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
evictionHard: {memory.available: 200Mi, nodefs.available: 2%, imagefs.available: 2%}
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
EOF
	cat >"$STATE/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $STATE/kube-proxy.kubeconfig}
mode: iptables
clusterCIDR: $POD_CIDR
hostnameOverride: $NODE_NAME
bindAddress: $NODE_IP
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
conntrack: {maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
}

cgroups() {
	local h
	for h in /sys/fs/cgroup/*/; do
		[[ -d "$h" && ! -L "${h%/}" ]] || continue
		mkdir -p "$h${CGROUP_ROOT#/}"
	done
}

# ingress_controller applies ingress.yaml (Traefik serving the IngressClass
# nginx) and waits for it; on a cluster brought up before Traefik was
# added, it imports the image first.
ingress_controller() {
	ctr_ images ls -q name==docker.io/kvstore-local/traefik:e2e | grep -q . ||
		ctr_ images import "$images/traefik.tar" >/dev/null
	kubectl_ apply -f "$HERE/ingress.yaml" >/dev/null
	wait_for "Traefik (the Ingress controller)" 120 kubectl_ wait --for=condition=Available --timeout=2s \
		-n traefik deployment/traefik
}

install_debs
bins="$("$HERE/bins.sh")"
[[ "$bins" == "$BIN" ]] || die "bins.sh printed $bins, not $BIN"
images="$("$HERE/images.sh")"

if healthy; then
	log "the cluster is already up"
	ingress_controller
	echo "$KUBECONFIG_OUT"
	exit 0
fi
if [[ -e "/run/netns/$NETNS" || -d "$STATE" || -d "$RUN" ]]; then
	log "a part of a cluster is left; taking it down first"
	"$HERE/down.sh"
fi

log "bringing up the node (state in $STATE)"
trap 'log "bring-up failed; run make e2e-down (or hack/kube/down.sh) to clean up"' ERR
configs
make_pki
network
cgroups

spawn containerd containerd --config "$STATE/containerd.toml"
wait_for containerd 30 ctr_ version
for tar in "$images"/*.tar; do
	ctr_ images import "$tar" >/dev/null
done
# The kubelet's image garbage collector must not remove them.
ctr_ images label "$PAUSE_IMAGE" io.cri-containerd.pinned=pinned >/dev/null

spawn etcd "$BIN/etcd" --name e2e --data-dir "$STATE/etcd" \
	--listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
	--listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
	--initial-cluster e2e=http://127.0.0.1:2380 --unsafe-no-fsync --log-level warn

pki="$STATE/pki"
spawn kube-apiserver "$BIN/kube-apiserver" \
	--etcd-servers http://127.0.0.1:2379 \
	--bind-address 0.0.0.0 --secure-port 6443 --advertise-address "$NODE_IP" \
	--cert-dir "$STATE/apiserver" \
	--tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
	--client-ca-file "$pki/ca.crt" \
	--service-cluster-ip-range "$SERVICE_CIDR" \
	--service-account-issuer "https://kubernetes.default.svc.$CLUSTER_DOMAIN" \
	--service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
	--kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" \
	--kubelet-client-key "$pki/apiserver-kubelet-client.key" \
	--kubelet-preferred-address-types InternalIP \
	--authorization-mode Node,RBAC --allow-privileged=true --profiling=false
wait_for kube-apiserver 60 kubectl_ get --raw /readyz

spawn kube-controller-manager "$BIN/kube-controller-manager" \
	--kubeconfig "$STATE/controller-manager.kubeconfig" \
	--authentication-kubeconfig "$STATE/controller-manager.kubeconfig" \
	--authorization-kubeconfig "$STATE/controller-manager.kubeconfig" \
	--bind-address 127.0.0.1 --leader-elect=false \
	--service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
	--cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
	--use-service-account-credentials --service-cluster-ip-range "$SERVICE_CIDR"
spawn kube-scheduler "$BIN/kube-scheduler" \
	--kubeconfig "$STATE/scheduler.kubeconfig" \
	--authentication-kubeconfig "$STATE/scheduler.kubeconfig" \
	--authorization-kubeconfig "$STATE/scheduler.kubeconfig" \
	--bind-address 127.0.0.1 --leader-elect=false
spawn kubelet "$BIN/kubelet" --config "$STATE/kubelet.yaml" \
	--kubeconfig "$STATE/kubelet.kubeconfig" --root-dir "$STATE/kubelet" \
	--hostname-override "$NODE_NAME" --node-ip "$NODE_IP"
spawn kube-proxy "$BIN/kube-proxy" --config "$STATE/kube-proxy.yaml"

wait_for "node $NODE_NAME to be Ready" 90 kubectl_ wait --for=condition=Ready "node/$NODE_NAME" --timeout=2s
export CLUSTER_DOMAIN DNS_IP STATE COREDNS_IMAGE BUSYBOX_IMAGE LOCAL_PATH_IMAGE
envsubst '${CLUSTER_DOMAIN} ${DNS_IP} ${STATE} ${COREDNS_IMAGE} ${BUSYBOX_IMAGE} ${LOCAL_PATH_IMAGE}' \
	<"$HERE/addons.yaml" | kubectl_ apply -f - >/dev/null
wait_for "CoreDNS and local-path-provisioner" 120 kubectl_ wait --for=condition=Available --timeout=2s \
	-n kube-system deployment/coredns
wait_for "local-path-provisioner" 60 kubectl_ wait --for=condition=Available --timeout=2s \
	-n local-path-storage deployment/local-path-provisioner
ingress_controller

trap - ERR
log "up in $((SECONDS - start))s; node $NODE_NAME at $NODE_IP, API https://$NODE_IP:6443"
log "export KUBECONFIG=$KUBECONFIG_OUT"
echo "$KUBECONFIG_OUT"
