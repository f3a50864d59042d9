package controller

import (
	"fmt"
	"strconv"
	"strings"

	kvv1 "kvstore.dev/kvstore/api/v1"
)

// FieldOwner is the server-side apply field manager of every object the
// operator writes.
const FieldOwner = "kvstore-operator"

// Ports and paths of the server container, fixed by the rendered config.
const (
	httpPort    = 8080
	peerPort    = 7000
	metricsPort = 6060
	dataDir     = "/data"
	configDir   = "/etc/kvstore"
	configFile  = "config.yaml"
	// bootstrapAllowedFile is the ConfigMap key (a file beside the config)
	// that says whether pod 0 may start a new cluster (clusterFormed).
	bootstrapAllowedFile = "bootstrap-allowed"
	podTLSDir            = "/etc/kvstore-tls"    // <name>-pod-tls
	tokensDir            = "/etc/kvstore-tokens" // <name>-tokens
	tokensFile           = "tokens.yaml"
)

// Keys in Secrets.
const (
	// AuthTokenKey is the key of the admin token in the auth Secret.
	AuthTokenKey = "token"
	caCertKey    = "ca.crt"
	caKeyKey     = "ca.key"
)

// Annotations the operator sets.
const (
	// ConfigHashAnnotation on the pod template changes when the rendered
	// config or the admin token changes, so the pods roll.
	ConfigHashAnnotation = "kvstore.dev/config-hash"
	// CARotationAnnotation on <name>-ca is the CA rotation phase (Adding,
	// Reissuing), absent when no rotation is under way; see caPhase.
	CARotationAnnotation = "kvstore.dev/ca-rotation"
	// CARotationSinceAnnotation on <name>-ca is when that phase began
	// (RFC 3339).
	CARotationSinceAnnotation = "kvstore.dev/ca-rotation-since"
)

// names holds the names of a KVStore's children.
type names struct {
	kv         string // the KVStore; also the StatefulSet, client Service, Ingress, PDB
	namespace  string
	peers      string // headless Service
	config     string // ConfigMap
	tls        string // Secret used by the Ingress (user's or ours)
	ca         string // Secret with the generated CA's key
	caBundle   string // Secret with the CA bundle alone (ca.crt): for the Ingress and clients
	auth       string // Secret with the admin token (user's or ours)
	peer       string // Secret with the token the servers share (ours)
	podTLS     string // Secret with the pods' API and peer certificates (ours)
	tokens     string // Secret with the rendered tokens file (ours)
	watch      string // second Ingress: /api/v1/watch with SSE settings
	userTLS    bool
	userAuth   bool
	certIssuer bool // cert-manager writes tls
}

func namesFor(kv *kvv1.KVStore) names {
	n := names{
		kv:        kv.Name,
		namespace: kv.Namespace,
		peers:     kv.Name + "-peers",
		config:    kv.Name + "-config",
		tls:       kv.Name + "-tls",
		ca:        kv.Name + "-ca",
		caBundle:  kv.Name + "-ca-bundle",
		auth:      kv.Name + "-auth",
		peer:      kv.Name + "-peer",
		podTLS:    kv.Name + "-pod-tls",
		tokens:    kv.Name + "-tokens",
		watch:     kv.Name + "-watch",
	}
	if s := kv.Spec.TLS.SecretName; s != "" {
		n.tls, n.userTLS = s, true
	}
	if kv.Spec.TLS.IssuerRef != nil && !n.userTLS {
		n.certIssuer = true
	}
	if s := kv.Spec.Auth.SecretName; s != "" {
		n.auth, n.userAuth = s, true
	}
	return n
}

// selectorLabels select the pods of one KVStore. They are immutable once the
// StatefulSet exists.
func selectorLabels(kv *kvv1.KVStore) map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":     "kvstore",
		"app.kubernetes.io/instance": kv.Name,
	}
}

// labels are the recommended labels of every child of kv.
func labels(kv *kvv1.KVStore, component string) map[string]string {
	l := selectorLabels(kv)
	l["app.kubernetes.io/component"] = component
	l["app.kubernetes.io/managed-by"] = FieldOwner
	l["app.kubernetes.io/part-of"] = "kvstore"
	return l
}

// replicas is spec.replicas with the schema's default.
func replicas(kv *kvv1.KVStore) int32 {
	if kv.Spec.Replicas == nil {
		return 1
	}
	return *kv.Spec.Replicas
}

// quorum is the number of servers that must be up for a replicated store of
// n servers to serve writes.
func quorum(n int32) int32 { return n/2 + 1 }

// podName is the name of the pod (and Raft node id) of ordinal i.
func podName(kv *kvv1.KVStore, i int32) string { return fmt.Sprintf("%s-%d", kv.Name, i) }

// ordinal returns the ordinal of a pod name of kv, or -1.
func ordinal(kv *kvv1.KVStore, pod string) int32 {
	rest, ok := strings.CutPrefix(pod, kv.Name+"-")
	if !ok {
		return -1
	}
	n, err := strconv.ParseInt(rest, 10, 32)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != rest {
		return -1
	}
	return int32(n)
}
