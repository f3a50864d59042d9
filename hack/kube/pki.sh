# shellcheck shell=bash
# pki.sh writes a kubeadm-style PKI and the components' kubeconfigs into
# $STATE/pki with openssl (ECDSA P-256 keys, one CA). Sourced by up.sh after
# lib.sh.

# cert <name> <subject> [subjectAltName]: a key and a certificate signed by
# the CA, for client and server use.
cert() {
	local name="$1" subj="$2" san="${3:-}" dir="$STATE/pki"
	openssl ecparam -name prime256v1 -genkey -noout -out "$dir/$name.key" 2>/dev/null
	openssl req -new -key "$dir/$name.key" -subj "$subj" -out "$dir/$name.csr" 2>/dev/null
	{
		echo "basicConstraints=critical,CA:FALSE"
		echo "keyUsage=critical,digitalSignature,keyEncipherment"
		echo "extendedKeyUsage=serverAuth,clientAuth"
		[[ -z "$san" ]] || echo "subjectAltName=$san"
	} >"$dir/$name.ext"
	openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
		-days 365 -sha256 -extfile "$dir/$name.ext" -out "$dir/$name.crt" 2>/dev/null
	rm -f "$dir/$name.csr" "$dir/$name.ext"
}

# kubeconfig <name> <server>: $STATE/<name>.kubeconfig using pki/<name>.{crt,key}.
kubeconfig() {
	local name="$1" server="$2" pki="$STATE/pki"
	cat >"$STATE/$name.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kvstore-e2e
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 "$pki/ca.crt")
users:
- name: $name
  user:
    client-certificate-data: $(base64 -w0 "$pki/$name.crt")
    client-key-data: $(base64 -w0 "$pki/$name.key")
contexts:
- name: kvstore-e2e
  context: {cluster: kvstore-e2e, user: $name}
current-context: kvstore-e2e
EOF
}

make_pki() {
	local dir="$STATE/pki" server="https://$NODE_IP:6443"
	mkdir -p "$dir"
	chmod 700 "$dir"
	openssl ecparam -name prime256v1 -genkey -noout -out "$dir/ca.key" 2>/dev/null
	openssl req -x509 -new -key "$dir/ca.key" -subj "/CN=kvstore-e2e-ca" -days 365 -sha256 \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
		-out "$dir/ca.crt" 2>/dev/null
	cert apiserver "/CN=kube-apiserver" \
		"IP:$NODE_IP,IP:$API_SERVICE_IP,IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$CLUSTER_DOMAIN"
	cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
	cert admin "/O=system:masters/CN=kubernetes-admin"
	cert controller-manager "/CN=system:kube-controller-manager"
	cert scheduler "/CN=system:kube-scheduler"
	cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" "IP:$NODE_IP,DNS:$NODE_NAME"
	cert kube-proxy "/CN=system:kube-proxy"
	# The service account token signing key pair.
	openssl ecparam -name prime256v1 -genkey -noout -out "$dir/sa.key" 2>/dev/null
	openssl ec -in "$dir/sa.key" -pubout -out "$dir/sa.pub" 2>/dev/null
	for name in admin controller-manager scheduler kubelet kube-proxy; do
		kubeconfig "$name" "$server"
	done
}
