package v1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// KVStoreSpec is what the user asks for: how many servers, their image,
// storage and scheduling, the server settings, and how clients reach them.
// +kubebuilder:validation:XValidation:rule="has(self.bootstrap) == has(oldSelf.bootstrap)",message="spec.bootstrap can be set only when the KVStore is created, and not removed after; create a new KVStore to restore a backup"
type KVStoreSpec struct {
	// Replicas is the number of kvstore servers (pods of the StatefulSet),
	// all of them Raft voters once the operator has promoted them. It must
	// be odd: a Raft cluster of 2k servers needs k+1 for a quorum and so
	// survives no more failures than one of 2k-1 (2 servers survive none),
	// while every write waits for more of them. An object stored with an
	// even count before this rule keeps it (the API server ratchets
	// unchanged fields), but a change must make it odd.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=9
	// +kubebuilder:validation:XValidation:rule="self % 2 == 1",message="spec.replicas must be odd (1, 3, 5, 7 or 9): a Raft cluster of 2k servers needs k+1 of them for a quorum, so it survives no more failures than one of 2k-1 (2 survive none, 4 only one); use 3 to survive the loss of 1 server, 5 for 2"
	// +kubebuilder:default=1
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`

	// Image is the kvstore server image. Empty: the operator's
	// --default-image.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="!self.contains(' ')",message="spec.image must not contain spaces; use a reference such as registry.example/kvstore:v1.2.3"
	// +optional
	Image string `json:"image,omitempty"`

	// ImagePullPolicy of the server container.
	// +kubebuilder:validation:Enum=Always;IfNotPresent;Never
	// +optional
	ImagePullPolicy corev1.PullPolicy `json:"imagePullPolicy,omitempty"`

	// ImagePullSecrets for the server image.
	// +optional
	// +listType=atomic
	ImagePullSecrets []corev1.LocalObjectReference `json:"imagePullSecrets,omitempty"`

	// Storage is each server's data volume.
	// +kubebuilder:default={}
	// +optional
	Storage StorageSpec `json:"storage,omitempty"`

	// Resources of the server container. Empty: the operator's defaults,
	// requests cpu 100m and memory 256Mi, limit memory 1Gi, no CPU limit.
	// Anything set replaces the defaults as a whole (requests default to
	// the limits, as Kubernetes does). The server's GOMEMLIMIT is 90% of
	// the memory limit; without a memory limit it is not set.
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`

	// NodeSelector of the server pods.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// Tolerations of the server pods.
	// +optional
	// +listType=atomic
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`

	// Affinity of the server pods. Empty: the operator prefers spreading
	// the pods over nodes.
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`

	// Config holds the server settings rendered into its config file.
	// +kubebuilder:default={}
	// +optional
	Config ServerConfig `json:"config,omitempty"`

	// TLS is the certificate the Ingress serves.
	// +optional
	TLS TLSSpec `json:"tls,omitempty"`

	// Auth is where the admin token lives.
	// +optional
	Auth AuthSpec `json:"auth,omitempty"`

	// Ingress routes HTTPS from outside the cluster to the store.
	// +optional
	Ingress IngressSpec `json:"ingress,omitempty"`

	// NetworkPolicy restricts which pods reach the servers' ports. Default:
	// enabled.
	// +kubebuilder:default={}
	// +optional
	NetworkPolicy NetworkPolicySpec `json:"networkPolicy,omitempty"`

	// Backup is the backup schedule and its destination. Empty: no
	// scheduled backups.
	// +optional
	Backup *BackupSpec `json:"backup,omitempty"`

	// Recovery asks for a disaster recovery (RecoverySpec); the operator
	// never does one on its own.
	// +optional
	Recovery *RecoverySpec `json:"recovery,omitempty"`
	// Bootstrap is where a new KVStore's first data comes from: a backup,
	// restored onto the first server's empty volume before any server
	// starts (status.bootstrap follows it). It is read only until the
	// store is restored, and is immutable: set at creation or never.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.bootstrap is immutable: it is read only when the KVStore is created; create a new KVStore to restore another backup"
	// +optional
	Bootstrap *BootstrapSpec `json:"bootstrap,omitempty"`
}

// NetworkPolicySpec describes the networking.k8s.io/v1 NetworkPolicy
// <name> the operator keeps on the server pods. With it, the peer port
// (7000) admits only the pods of this KVStore; the API port (8080) admits
// the operator's namespace, the ingress controller's namespace (when
// spec.ingress.enabled) and the namespaces of APIFrom; the metrics port
// (6060) admits the operator's namespace and those of APIFrom. Pods in the
// KVStore's own namespace are not admitted to the API unless APIFrom lists
// that namespace.
type NetworkPolicySpec struct {
	// Enabled creates the NetworkPolicy; false deletes it. Default: true.
	// +kubebuilder:default=true
	// +optional
	Enabled *bool `json:"enabled,omitempty"`

	// APIFrom are the namespaces whose pods may reach the API and metrics
	// ports, besides the operator's and the ingress controller's. Each
	// entry names one namespace, or selects namespaces by label.
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +optional
	APIFrom []NamespacePeer `json:"apiFrom,omitempty"`
}

// NamespacePeer is a namespace, by name, or the namespaces a label
// selector selects: exactly one of the two.
// +kubebuilder:validation:XValidation:rule="has(self.namespace) != has(self.namespaceSelector)",message="each entry of spec.networkPolicy.apiFrom sets exactly one of namespace and namespaceSelector"
type NamespacePeer struct {
	// Namespace is a namespace's name, e.g. the KVStore's own to let its
	// neighbours in.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// NamespaceSelector selects namespaces by their labels; {} selects
	// every namespace.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
}

// StorageSpec is the PersistentVolumeClaim template of each server.
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.size) || (has(self.size) && self.size == oldSelf.size)",message="spec.storage.size is immutable after creation; create a new KVStore (or resize the PVCs by hand) to change it"
// +kubebuilder:validation:XValidation:rule="has(oldSelf.storageClassName) == has(self.storageClassName) && (!has(self.storageClassName) || self.storageClassName == oldSelf.storageClassName)",message="spec.storage.storageClassName is immutable after creation"
type StorageSpec struct {
	// Size of each server's volume.
	// +kubebuilder:default="1Gi"
	// +optional
	Size *resource.Quantity `json:"size,omitempty"`

	// StorageClassName of the volumes. Empty: the cluster's default class.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	StorageClassName *string `json:"storageClassName,omitempty"`

	// DeleteClaimsOnScaleDown deletes the volume of a server removed by a
	// scale down. Default: kept, so scaling up again finds the data (the
	// server rejoins with it). Claims are always kept when the KVStore is
	// deleted.
	// +optional
	DeleteClaimsOnScaleDown bool `json:"deleteClaimsOnScaleDown,omitempty"`
}

// ServerConfig is the part of the server's configuration the user sets.
type ServerConfig struct {
	// MaxValueBytes is the largest value a client may store. The Ingress's
	// body size limit follows it.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=67108864
	// +kubebuilder:default=1048576
	// +optional
	MaxValueBytes int64 `json:"maxValueBytes,omitempty"`

	// LogLevel of the server.
	// +kubebuilder:validation:Enum=debug;info;warn;error
	// +kubebuilder:default=info
	// +optional
	LogLevel string `json:"logLevel,omitempty"`
}

// TLSSpec chooses where the edge certificate comes from: a Secret the user
// made, a cert-manager issuer, or (both empty) a CA the operator generates.
// +kubebuilder:validation:XValidation:rule="!(has(self.secretName) && has(self.issuerRef))",message="set at most one of spec.tls.secretName and spec.tls.issuerRef"
type TLSSpec struct {
	// SecretName is a kubernetes.io/tls Secret in the KVStore's namespace,
	// used as is and never modified. Empty: the operator writes
	// <name>-tls itself (or has cert-manager write it, see IssuerRef).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +optional
	SecretName string `json:"secretName,omitempty"`

	// IssuerRef makes the operator create a cert-manager Certificate
	// <name> that writes <name>-tls, instead of issuing it itself.
	// cert-manager must be installed.
	// +optional
	IssuerRef *IssuerReference `json:"issuerRef,omitempty"`

	// Pods is whether the servers' own API port serves HTTPS, with a
	// certificate from the operator's CA (Enabled), or plain HTTP inside
	// the cluster (Disabled). Peer traffic is mutual TLS either way.
	// +kubebuilder:validation:Enum=Enabled;Disabled
	// +kubebuilder:default=Enabled
	// +optional
	Pods string `json:"pods,omitempty"`
}

// IssuerReference names a cert-manager Issuer or ClusterIssuer.
type IssuerReference struct {
	// Name of the issuer.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Kind of the issuer: Issuer or ClusterIssuer.
	// +kubebuilder:validation:Enum=Issuer;ClusterIssuer
	// +kubebuilder:default=Issuer
	// +optional
	Kind string `json:"kind,omitempty"`
	// Group of the issuer.
	// +kubebuilder:default="cert-manager.io"
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Group string `json:"group,omitempty"`
}

// AuthSpec chooses where the admin token comes from.
type AuthSpec struct {
	// SecretName is a Secret in the KVStore's namespace whose key "token"
	// is the admin token; the operator only reads it. Empty: the operator
	// generates <name>-auth with a random token once and never rotates it.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +optional
	SecretName string `json:"secretName,omitempty"`

	// Tokens are further API tokens. The operator renders them (as SHA-256
	// digests) into the Secret <name>-tokens, which the servers re-read
	// while running: adding, changing or removing one restarts no pod.
	// +kubebuilder:validation:MaxItems=64
	// +listType=map
	// +listMapKey=name
	// +optional
	Tokens []TokenSpec `json:"tokens,omitempty"`
}

// TokenSpec is one API token: who it is, what it may do, and where its
// secret value is.
type TokenSpec struct {
	// Name identifies the token in the servers' logs; unique.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9._]*[a-z0-9])?$`
	Name string `json:"name"`
	// Role is what the token may do: admin, readwrite or readonly.
	// +kubebuilder:validation:Enum=admin;readwrite;readonly
	Role string `json:"role"`
	// Prefixes limit the keys the token reaches, each ending with "/"
	// ("app/"). Empty: every key.
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=256
	// +kubebuilder:validation:items:Pattern=`^[^/]+(/[^/]+)*/$`
	// +listType=set
	// +optional
	Prefixes []string `json:"prefixes,omitempty"`
	// SecretRef is the key of a Secret in the KVStore's namespace holding
	// the token (at least 16 characters); the operator only reads it.
	SecretRef SecretKeyRef `json:"secretRef"`
}

// SecretKeyRef names one key of a Secret in the KVStore's namespace.
type SecretKeyRef struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Key in the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key"`
}

// IngressSpec describes the networking.k8s.io/v1 Ingress of the store.
// +kubebuilder:validation:XValidation:rule="!has(self.enabled) || !self.enabled || (has(self.host) && self.host.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?)(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'))",message="spec.ingress.host must be a lower-case DNS name such as kv.example.com when spec.ingress.enabled is true"
type IngressSpec struct {
	// Enabled creates the Ingress.
	// +optional
	Enabled bool `json:"enabled,omitempty"`

	// Host is the DNS name clients use. Required when Enabled.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Host string `json:"host,omitempty"`

	// ClassName is the IngressClass.
	// +kubebuilder:default=nginx
	// +kubebuilder:validation:MaxLength=253
	// +optional
	ClassName string `json:"className,omitempty"`

	// Annotations are added to the Ingress, over the operator's
	// ingress-nginx defaults.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`

	// ControllerNamespace is the namespace of the ingress controller's
	// pods, admitted to the API port by the NetworkPolicy. Empty: the
	// operator's --ingress-controller-namespace (default ingress-nginx).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	ControllerNamespace string `json:"controllerNamespace,omitempty"`
}

// KVStoreStatus is what the operator observed.
type KVStoreStatus struct {
	// ObservedGeneration is the generation of the spec last reconciled.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Replicas is the number of server pods that exist.
	// +optional
	Replicas int32 `json:"replicas,omitempty"`

	// ReadyReplicas is the number of server pods that are ready.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`

	// Selector is the label selector of the server pods (for the scale
	// subresource and HorizontalPodAutoscalers).
	// +optional
	Selector string `json:"selector,omitempty"`

	// Endpoint is the URL clients use: the Ingress URL when enabled, else
	// the client Service's in-cluster URL.
	// +optional
	Endpoint string `json:"endpoint,omitempty"`

	// TLSSecretName is the Secret holding the edge certificate.
	// +optional
	TLSSecretName string `json:"tlsSecretName,omitempty"`

	// AuthSecretName is the Secret holding the admin token (key "token").
	// +optional
	AuthSecretName string `json:"authSecretName,omitempty"`

	// CertificateNotAfter is when the operator-issued certificate expires;
	// it is re-issued at two thirds of its lifetime.
	// +optional
	CertificateNotAfter *metav1.Time `json:"certificateNotAfter,omitempty"`

	// Leader is the server (pod) that leads the Raft cluster, as last seen.
	// +optional
	Leader string `json:"leader,omitempty"`

	// Members are the servers in the Raft configuration, as last seen.
	// +optional
	// +listType=map
	// +listMapKey=name
	Members []MemberStatus `json:"members,omitempty"`

	// Conditions are Available, Progressing and Degraded.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// LastBackup is the newest successful backup.
	// +optional
	LastBackup *LastBackupStatus `json:"lastBackup,omitempty"`

	// Recovery is the record of a recovery from a lost quorum, and what
	// the operator tracks for one: since when the quorum is lost, and the
	// highest commit index it saw.
	// +optional
	Recovery *RecoveryStatus `json:"recovery,omitempty"`
	// Bootstrap is the restore of spec.bootstrap.fromBackup: Restoring,
	// then Restored (the servers start) or Failed (they never do).
	// +optional
	Bootstrap *BootstrapStatus `json:"bootstrap,omitempty"`
}

// MemberStatus is one server in the Raft configuration.
type MemberStatus struct {
	// Name is the server's node id: its pod's name.
	Name string `json:"name"`
	// Suffrage is Voter, or Nonvoter while it catches up after joining.
	Suffrage string `json:"suffrage"`
}

// Condition types of a KVStore.
const (
	// ConditionAvailable is True when a quorum of servers is ready.
	ConditionAvailable = "Available"
	// ConditionProgressing is True while pods are created, rolled or scaled.
	ConditionProgressing = "Progressing"
	// ConditionDegraded is True when the operator cannot bring the store
	// to its spec, or servers stay unready; the reason says why.
	ConditionDegraded = "Degraded"
)

// KVStore is a kvstore deployment: a StatefulSet of servers and everything
// they need, kept in shape by the operator.
//
// +kubebuilder:object:root=true
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 52 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must be at most 52 characters of a-z, 0-9 and '-', starting with a letter (it names the StatefulSet, its Services and pods)"
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.replicas,statuspath=.status.replicas,selectorpath=.status.selector
// +kubebuilder:resource:shortName=kvs,categories=all
// +kubebuilder:printcolumn:name="Replicas",type=integer,JSONPath=`.spec.replicas`
// +kubebuilder:printcolumn:name="Ready",type=integer,JSONPath=`.status.readyReplicas`
// +kubebuilder:printcolumn:name="Leader",type=string,JSONPath=`.status.leader`
// +kubebuilder:printcolumn:name="Host",type=string,JSONPath=`.spec.ingress.host`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type KVStore struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec KVStoreSpec `json:"spec,omitempty"`
	// +optional
	Status KVStoreStatus `json:"status,omitempty"`
}

// KVStoreList is a list of KVStores.
//
// +kubebuilder:object:root=true
type KVStoreList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []KVStore `json:"items"`
}

func init() {
	SchemeBuilder.Register(&KVStore{}, &KVStoreList{})
}
