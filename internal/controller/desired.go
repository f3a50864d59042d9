package controller

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"sigs.k8s.io/yaml"

	kvv1 "kvstore.dev/kvstore/api/v1"
	"kvstore.dev/kvstore/wire"
)

// BuildOptions are the operator-wide inputs of the desired-state builders.
type BuildOptions struct {
	// DefaultImage is used when spec.image is empty.
	DefaultImage string
	// ClusterDomain is the cluster's DNS suffix (cluster.local).
	ClusterDomain string
	// OperatorNamespace is the operator's own namespace, admitted to the
	// API and metrics ports by the NetworkPolicy; empty: not admitted (an
	// operator outside the cluster).
	OperatorNamespace string
	// IngressControllerNamespace is the ingress controller's namespace,
	// admitted to the API port when spec.ingress.enabled, unless
	// spec.ingress.controllerNamespace overrides it.
	IngressControllerNamespace string
}

// ownerRef makes kv the controller of a child.
func ownerRef(kv *kvv1.KVStore) *metav1ac.OwnerReferenceApplyConfiguration {
	return metav1ac.OwnerReference().
		WithAPIVersion(kvv1.GroupVersion.String()).
		WithKind("KVStore").
		WithName(kv.Name).
		WithUID(kv.UID).
		WithController(true).
		WithBlockOwnerDeletion(true)
}

// serverConfig is the subset of the server's config file (internal/config)
// the operator writes. Field names are the server's YAML keys.
type serverConfig struct {
	Listen      string `json:"listen"`
	DebugListen string `json:"debug_listen"`
	Pprof       bool   `json:"pprof"`
	DataDir     string `json:"data_dir"`
	Limits      struct {
		MaxValueBytes int64 `json:"max_value_bytes"`
	} `json:"limits"`
	Log struct {
		Level  string `json:"level"`
		Format string `json:"format"`
	} `json:"log"`
	Console struct {
		Enabled bool `json:"enabled"`
	} `json:"console"`
	Cluster struct {
		Enabled       bool   `json:"enabled"`
		PeerListen    string `json:"peer_listen"`
		BootstrapNode string `json:"bootstrap_node"`
		// The file's content is not in the pod template's hash, so
		// the operator changes it without rolling the pods
		// (desiredConfigMap).
		BootstrapAllowedFile string   `json:"bootstrap_allowed_file"`
		Join                 []string `json:"join"`
		JoinAs               string   `json:"join_as"`
	} `json:"cluster"`
}

func maxValueBytes(kv *kvv1.KVStore) int64 {
	if v := kv.Spec.Config.MaxValueBytes; v > 0 {
		return v
	}
	return 1 << 20
}

// renderConfig renders the server's config file for kv. Metrics are served
// on the pod IP for Prometheus; pprof stays off there. The admin token comes
// from the environment (KVSTORE_ADMIN_TOKEN), never from this file.
//
// Every server runs in cluster mode, one server being a cluster of one. The
// first pod may bootstrap; the others (and pod 0 when it lost its volume)
// join through the headless Service, which reaches any member, as
// non-voters: the operator promotes them once they have caught up. The node
// id and peer address are per pod, so they are container arguments
// (statefulSetArgs), not in this shared file.
func renderConfig(kv *kvv1.KVStore, o BuildOptions) string {
	var c serverConfig
	c.Listen = ":" + strconv.Itoa(httpPort)
	c.DebugListen = ":" + strconv.Itoa(metricsPort)
	c.DataDir = dataDir
	c.Limits.MaxValueBytes = maxValueBytes(kv)
	c.Log.Level = kv.Spec.Config.LogLevel
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	c.Log.Format = "json"
	c.Console.Enabled = true
	c.Cluster.Enabled = true
	c.Cluster.PeerListen = ":" + strconv.Itoa(peerPort)
	c.Cluster.BootstrapNode = podName(kv, 0)
	c.Cluster.BootstrapAllowedFile = configDir + "/" + bootstrapAllowedFile
	c.Cluster.Join = []string{peersHost(kv, o) + ":" + strconv.Itoa(peerPort)}
	c.Cluster.JoinAs = "nonvoter"
	b, err := yaml.Marshal(c)
	if err != nil { // a struct of strings, ints and bools always marshals
		panic(fmt.Sprintf("render server config: %v", err))
	}
	return "# Written by the kvstore operator from KVStore " + kv.Name + "; edits are reverted.\n" + string(b)
}

// configHash is the pod template's ConfigHashAnnotation: it changes when the
// rendered config or the admin token changes. The token itself never
// leaves the operator; only this digest of it does.
func configHash(config string, tokens ...string) string {
	h := sha256.New()
	h.Write([]byte(config))
	for _, t := range tokens {
		h.Write([]byte{0})
		h.Write([]byte(t))
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// peersHost is the headless Service's DNS name.
func peersHost(kv *kvv1.KVStore, o BuildOptions) string {
	return namesFor(kv).peers + "." + kv.Namespace + ".svc." + clusterDomain(o)
}

func clusterDomain(o BuildOptions) string {
	if o.ClusterDomain == "" {
		return "cluster.local"
	}
	return o.ClusterDomain
}

// desiredConfigMap holds the server's config file and, beside it, the
// bootstrap-allowed file: "true" until the cluster has formed, then
// "false" for good. Pod 0 asks it when it starts on an empty volume and no
// peer answers (cluster.bootstrap_allowed_file): before the cluster formed
// it starts one; after, it keeps asking to join, so a first server that
// lost its volume cannot start a second cluster while the others are
// briefly unreachable. Only the config file is in the pod template's hash,
// so the flip does not roll the pods; the kubelet updates the mounted file
// within its sync period (about a minute).
func desiredConfigMap(kv *kvv1.KVStore, o BuildOptions, formed bool) *corev1ac.ConfigMapApplyConfiguration {
	n := namesFor(kv)
	return corev1ac.ConfigMap(n.config, n.namespace).
		WithLabels(labels(kv, "config")).
		WithOwnerReferences(ownerRef(kv)).
		WithData(map[string]string{
			configFile:           renderConfig(kv, o),
			bootstrapAllowedFile: strconv.FormatBool(!formed),
		})
}

// clusterFormed says whether kv's cluster has ever formed: a leader seen
// now (view, nil when the servers were not asked), a leader or members in
// the status, or the observed ConfigMap already saying "false" (cm, nil
// when absent). The last makes it stick: a status emptied by a view from a
// server that is not a member cannot turn it back. A KVStore restored from
// a backup (spec.bootstrap) starts formed: its pod 0 is seeded and must
// never start an empty cluster.
func clusterFormed(kv *kvv1.KVStore, view *wire.ClusterStatus, cm *corev1.ConfigMap) bool {
	return (view != nil && view.LeaderID != "") ||
		kv.Status.Leader != "" || len(kv.Status.Members) > 0 ||
		(cm != nil && cm.Data[bootstrapAllowedFile] == "false") ||
		kv.Spec.Bootstrap != nil
}

// desiredPeersService is the headless Service that gives each pod a stable
// DNS name (<pod>.<name>-peers) for replication. Pods are published before
// they are ready, so peers can find each other while starting.
func desiredPeersService(kv *kvv1.KVStore) *corev1ac.ServiceApplyConfiguration {
	n := namesFor(kv)
	return corev1ac.Service(n.peers, n.namespace).
		WithLabels(labels(kv, "peers")).
		WithOwnerReferences(ownerRef(kv)).
		WithSpec(corev1ac.ServiceSpec().
			WithClusterIP(corev1.ClusterIPNone).
			WithPublishNotReadyAddresses(true).
			WithSelector(selectorLabels(kv)).
			WithPorts(
				corev1ac.ServicePort().WithName("http").WithPort(httpPort).WithTargetPort(intstr.FromString("http")).WithProtocol(corev1.ProtocolTCP),
				corev1ac.ServicePort().WithName("peer").WithPort(peerPort).WithTargetPort(intstr.FromString("peer")).WithProtocol(corev1.ProtocolTCP),
			))
}

// desiredClientService is the Service clients and the Ingress use.
func desiredClientService(kv *kvv1.KVStore) *corev1ac.ServiceApplyConfiguration {
	n := namesFor(kv)
	return corev1ac.Service(n.kv, n.namespace).
		WithLabels(labels(kv, "server")).
		WithOwnerReferences(ownerRef(kv)).
		WithSpec(corev1ac.ServiceSpec().
			WithType(corev1.ServiceTypeClusterIP).
			WithSelector(selectorLabels(kv)).
			WithPorts(
				corev1ac.ServicePort().WithName("http").WithPort(httpPort).WithTargetPort(intstr.FromString("http")).WithProtocol(corev1.ProtocolTCP),
				corev1ac.ServicePort().WithName("metrics").WithPort(metricsPort).WithTargetPort(intstr.FromString("metrics")).WithProtocol(corev1.ProtocolTCP),
			))
}

// desiredAuthSecret is the operator-generated auth Secret holding token. The
// caller passes the token already in the Secret when there is one, so it is
// never rotated.
func desiredAuthSecret(kv *kvv1.KVStore, token string) *corev1ac.SecretApplyConfiguration {
	n := namesFor(kv)
	return corev1ac.Secret(n.auth, n.namespace).
		WithLabels(labels(kv, "auth")).
		WithOwnerReferences(ownerRef(kv)).
		WithType(corev1.SecretTypeOpaque).
		WithData(map[string][]byte{AuthTokenKey: []byte(token)})
}

// desiredPeerSecret holds the token the servers share on the peer port
// (generated once, like the admin token).
func desiredPeerSecret(kv *kvv1.KVStore, token string) *corev1ac.SecretApplyConfiguration {
	n := namesFor(kv)
	return corev1ac.Secret(n.peer, n.namespace).
		WithLabels(labels(kv, "peer")).
		WithOwnerReferences(ownerRef(kv)).
		WithType(corev1.SecretTypeOpaque).
		WithData(map[string][]byte{AuthTokenKey: []byte(token)})
}

// desiredCASecret is the operator's CA Secret <name>-ca: the CA keys stay
// here, out of the Secrets the Ingress and the pods read. Its annotations
// record the rotation phase (caState).
func desiredCASecret(kv *kvv1.KVStore, ca caState) *corev1ac.SecretApplyConfiguration {
	n := namesFor(kv)
	s := corev1ac.Secret(n.ca, n.namespace).
		WithLabels(labels(kv, "ca")).
		WithOwnerReferences(ownerRef(kv)).
		WithType(corev1.SecretTypeOpaque).
		WithData(ca.data())
	if a := ca.annotations(); a != nil {
		s.WithAnnotations(a)
	}
	return s
}

// desiredCABundleSecret is <name>-ca-bundle: the CA bundle (caState.bundle)
// alone, under ca.crt. The Ingress verifies the pods with it
// (proxy-ssl-secret), and clients inside the cluster trust it, so neither
// needs to read <name>-pod-tls, which holds every pod's private keys. It
// has no tls.crt or tls.key, so ingress-nginx presents no client
// certificate to the pods.
func desiredCABundleSecret(kv *kvv1.KVStore, bundle []byte) *corev1ac.SecretApplyConfiguration {
	n := namesFor(kv)
	return corev1ac.Secret(n.caBundle, n.namespace).
		WithLabels(labels(kv, "ca-bundle")).
		WithOwnerReferences(ownerRef(kv)).
		WithType(corev1.SecretTypeOpaque).
		WithData(map[string][]byte{caCertKey: bundle})
}

// desiredTLSSecret is the operator-issued edge certificate Secret
// <name>-tls, with ca.crt (the CA bundle) for clients to trust.
func desiredTLSSecret(kv *kvv1.KVStore, m tlsMaterial) *corev1ac.SecretApplyConfiguration {
	n := namesFor(kv)
	return corev1ac.Secret(n.tls, n.namespace).
		WithLabels(labels(kv, "tls")).
		WithOwnerReferences(ownerRef(kv)).
		WithType(corev1.SecretTypeTLS).
		WithData(map[string][]byte{corev1.TLSCertKey: m.cert, corev1.TLSPrivateKeyKey: m.key, caCertKey: m.bundle})
}

// tlsHosts are the names the edge certificate is issued for: the Ingress
// host and every in-cluster name of the client and peer Services.
func tlsHosts(kv *kvv1.KVStore, o BuildOptions) []string {
	n := namesFor(kv)
	var hosts []string
	if kv.Spec.Ingress.Host != "" {
		hosts = append(hosts, kv.Spec.Ingress.Host)
	}
	domain := o.ClusterDomain
	if domain == "" {
		domain = "cluster.local"
	}
	for _, svc := range []string{n.kv, "*." + n.peers} {
		hosts = append(hosts, svc+"."+n.namespace, svc+"."+n.namespace+".svc", svc+"."+n.namespace+".svc."+domain)
	}
	hosts = append(hosts, n.kv)
	sort.Strings(hosts)
	return hosts
}

// storageSize is spec.storage.size with the schema's default.
func storageSize(kv *kvv1.KVStore) resource.Quantity {
	if kv.Spec.Storage.Size != nil {
		return *kv.Spec.Storage.Size
	}
	return resource.MustParse("1Gi")
}

func image(kv *kvv1.KVStore, o BuildOptions) string {
	if kv.Spec.Image != "" {
		return kv.Spec.Image
	}
	return o.DefaultImage
}

// endpoint is the URL clients use.
func endpoint(kv *kvv1.KVStore, o BuildOptions) string {
	if kv.Spec.Ingress.Enabled && kv.Spec.Ingress.Host != "" {
		return "https://" + kv.Spec.Ingress.Host + "/"
	}
	domain := o.ClusterDomain
	if domain == "" {
		domain = "cluster.local"
	}
	return fmt.Sprintf("%s://%s.%s.svc.%s:%d/", apiScheme(kv), kv.Name, kv.Namespace, domain, httpPort)
}

// condition builds a condition of kv's status at generation gen.
func condition(t string, s metav1.ConditionStatus, reason, msg string, gen int64) metav1.Condition {
	return metav1.Condition{Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: gen}
}
