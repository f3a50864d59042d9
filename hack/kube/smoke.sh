#!/usr/bin/env bash
# smoke.sh checks that the local cluster (hack/kube/up.sh) works as a
# cluster: the node is Ready; a pod from a local image runs and its logs
# are readable through the API server (kubelet's serving port); a claim of
# the default StorageClass binds and its volume is writable; CoreDNS
# resolves a Service's name from a pod, and the Service's ClusterIP
# answers, from a pod and from the host. Uses the namespace smoke, removed
# at the end; exits non-zero at the first failed check.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/kube/lib.sh
source "$HERE/lib.sh"
k() { kubectl_ -n smoke "$@"; }
check() { log "ok: $*"; }

kubectl_ get nodes
kubectl_ wait --for=condition=Ready "node/$NODE_NAME" --timeout=10s >/dev/null
check "node $NODE_NAME is Ready"

kubectl_ create namespace smoke --dry-run=client -o yaml | kubectl_ apply -f - >/dev/null
trap 'kubectl_ delete namespace smoke --wait=false >/dev/null 2>&1 || true' EXIT

export BUSYBOX_IMAGE
envsubst '${BUSYBOX_IMAGE}' <<'EOF' | k apply -f - >/dev/null
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 64Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: writer, labels: {app: writer}}
spec:
  securityContext: {runAsUser: 65532, runAsGroup: 65532, fsGroup: 65532}
  containers:
    - name: main
      image: ${BUSYBOX_IMAGE}
      imagePullPolicy: Never
      command: [sh, -c, 'echo hello from $(hostname); echo written > /data/file; cat /data/file; exec httpd -f -p 8080 -h /data']
      ports: [{containerPort: 8080}]
      volumeMounts: [{name: data, mountPath: /data}]
  volumes:
    - name: data
      persistentVolumeClaim: {claimName: data}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: writer}
  ports: [{port: 80, targetPort: 8080}]
EOF

k wait --for=condition=Ready pod/writer --timeout=120s >/dev/null
check "pod writer runs the local image $BUSYBOX_IMAGE"
[[ "$(k get pvc data -o jsonpath='{.status.phase}')" == Bound ]]
check "claim data of the default StorageClass is $(k get pvc data -o jsonpath='{.status.phase}') ($(k get pvc data -o jsonpath='{.spec.storageClassName}'))"
k logs writer | grep -q '^written$'
check "kubectl logs: $(k logs writer | tr '\n' ' ')"

k run dns --image "$BUSYBOX_IMAGE" --image-pull-policy Never --restart Never --command -- \
	sh -c "nslookup web.smoke.svc.$CLUSTER_DOMAIN $DNS_IP && wget -qO- http://web.smoke/file" >/dev/null
k wait --for=jsonpath='{.status.phase}'=Succeeded pod/dns --timeout=60s >/dev/null
k logs dns | grep -q '^written$'
check "from a pod, web.smoke resolves to $(k logs dns | awk '/^Address/ { a = $2 } END { print a }') and serves the file"

ip="$(k get svc web -o jsonpath='{.spec.clusterIP}')"
[[ "$(curl -fsS --max-time 5 "http://$ip/file")" == written ]]
check "from the host, ClusterIP $ip serves the file"
podip="$(k get pod writer -o jsonpath='{.status.podIP}')"
[[ "$(curl -fsS --max-time 5 "http://$podip:8080/file")" == written ]]
check "from the host, pod IP $podip serves the file"
