package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BackupSpec is a KVStore's backup schedule: where its backups go, how
// often the operator takes one, and how many it keeps.
type BackupSpec struct {
	// Destination is where the backups go. KVStoreBackups of this KVStore
	// that name no destination of their own use it too.
	Destination BackupDestination `json:"destination"`

	// Schedule is when the operator takes a backup: five-field cron
	// ("0 */6 * * *"), or @hourly, @daily, @weekly, @every 6h. Times are
	// UTC unless prefixed with CRON_TZ=Area/City. Empty: no scheduled
	// backups (KVStoreBackups are still taken on demand).
	// +kubebuilder:validation:MaxLength=128
	// +optional
	Schedule string `json:"schedule,omitempty"`

	// Suspend stops scheduled backups without forgetting the schedule.
	// Backups already running finish; on-demand KVStoreBackups still run.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// Retention is applied to the destination after each scheduled backup
	// succeeds: every backup there counts, on-demand ones too (give those
	// a destination of their own to keep them apart); the scheduled
	// KVStoreBackups whose backups it deleted are deleted with them. The
	// newest backup is never deleted.
	// +optional
	Retention BackupRetention `json:"retention,omitempty"`

	// Timeout bounds one backup. Default 1h.
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// MaxRate limits how fast a backup reads the snapshot from the server,
	// in bytes per second (as pg_basebackup's --max-rate), so that it
	// leaves the servers the CPU and disk bandwidth it would take: a
	// backup of an N-byte store then lasts at least N/MaxRate seconds. It
	// applies to every backup of this KVStore, scheduled or on demand, to
	// S3 or to a PersistentVolumeClaim. 0: no limit. Unset: 16777216
	// (16 MiB/s).
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:XValidation:rule="self == 0 || self >= 1048576",message="spec.backup.maxRate must be 0 (no limit) or at least 1048576 bytes per second (1 MiB/s)"
	// +optional
	MaxRate *int64 `json:"maxRate,omitempty"`
}

// BackupRetention limits how many backups are kept: a backup is deleted
// when it is not among the newest KeepLast or is older than MaxAge.
type BackupRetention struct {
	// KeepLast keeps the newest N backups. 0 or unset: no count limit.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10000
	// +optional
	KeepLast *int32 `json:"keepLast,omitempty"`

	// MaxAge deletes backups that started longer ago: a whole number and a
	// unit, s, m, h, d or w ("30d"). Empty: no age limit.
	// +kubebuilder:validation:Pattern=`^[0-9]{1,6}[smhdw]$`
	// +optional
	MaxAge string `json:"maxAge,omitempty"`
}

// BackupDestination is where a backup is written: S3-compatible object
// storage, or a PersistentVolumeClaim. Exactly one is set.
// +kubebuilder:validation:XValidation:rule="has(self.s3) != has(self.persistentVolumeClaim)",message="a backup destination sets exactly one of s3 and persistentVolumeClaim"
type BackupDestination struct {
	// S3 is a bucket (and prefix) of S3-compatible object storage.
	// +optional
	S3 *S3Destination `json:"s3,omitempty"`

	// PersistentVolumeClaim is a claim in the KVStore's namespace that a
	// backup Job mounts and writes into.
	// +optional
	PersistentVolumeClaim *PVCDestination `json:"persistentVolumeClaim,omitempty"`
}

// S3Destination is a bucket of S3-compatible object storage.
type S3Destination struct {
	// Bucket is the bucket's name.
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9][a-z0-9.-]*[a-z0-9]$`
	Bucket string `json:"bucket"`

	// Prefix is the folder inside the bucket, without leading or trailing
	// slashes. Empty: the bucket's root.
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^([^/]+(/[^/]+)*)?$`
	// +optional
	Prefix string `json:"prefix,omitempty"`

	// Endpoint is the object storage's URL, http(s)://host[:port]. Empty:
	// https://s3.amazonaws.com.
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^https?://[^/?#@]+/?$`
	// +optional
	Endpoint string `json:"endpoint,omitempty"`

	// Region of the bucket. Empty: us-east-1.
	// +kubebuilder:validation:MaxLength=64
	// +optional
	Region string `json:"region,omitempty"`

	// BucketLookup is how the bucket is addressed: auto (virtual-host
	// style for AWS, path style elsewhere), path or dns.
	// +kubebuilder:validation:Enum=auto;path;dns
	// +optional
	BucketLookup string `json:"bucketLookup,omitempty"`

	// CredentialsSecret names a Secret in the KVStore's namespace with the
	// access key (key accessKeyID) and secret key (key secretAccessKey),
	// and optionally a session token (key sessionToken).
	CredentialsSecret string `json:"credentialsSecret"`

	// CA is a PEM bundle trusted, in addition to the system roots, for the
	// endpoint's certificate.
	// +optional
	CA *SecretKeyRef `json:"ca,omitempty"`
}

// PVCDestination is a directory on a PersistentVolumeClaim.
type PVCDestination struct {
	// ClaimName is the claim, in the KVStore's namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	ClaimName string `json:"claimName"`

	// SubPath is the directory inside the volume. Empty: its root.
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^([^/.][^/]*(/[^/.][^/]*)*)?$`
	// +optional
	SubPath string `json:"subPath,omitempty"`
}

// KVStoreBackupSpec asks for one backup of a KVStore.
type KVStoreBackupSpec struct {
	// KVStoreName is the KVStore, in the same namespace, to back up.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=52
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.kvstoreName is immutable"
	KVStoreName string `json:"kvstoreName"`

	// Destination is where this backup goes. Empty: the KVStore's
	// spec.backup.destination.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.destination is immutable"
	// +optional
	Destination *BackupDestination `json:"destination,omitempty"`
}

// BackupPhase is where a backup stands.
// +kubebuilder:validation:Enum=Pending;Running;Succeeded;Failed
type BackupPhase string

// Phases of a KVStoreBackup.
const (
	BackupPending   BackupPhase = "Pending"
	BackupRunning   BackupPhase = "Running"
	BackupSucceeded BackupPhase = "Succeeded"
	BackupFailed    BackupPhase = "Failed"
)

// KVStoreBackupStatus is what the operator recorded of the backup.
type KVStoreBackupStatus struct {
	// Phase is Pending, Running, Succeeded or Failed.
	// +optional
	Phase BackupPhase `json:"phase,omitempty"`

	// StartTime is when the operator began the backup.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`

	// CompletionTime is when it succeeded or failed.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`

	// BackupName is the backup's name in its destination
	// (kvstore-<time>); its data is <name>.db, its manifest <name>.json.
	// +optional
	BackupName string `json:"backupName,omitempty"`

	// DestinationURI is the data object's URI (s3://bucket/prefix/<name>.db
	// or pvc://claim/subpath/<name>.db).
	// +optional
	DestinationURI string `json:"destinationURI,omitempty"`

	// Revision is the store's revision the snapshot holds (at least).
	// +optional
	Revision int64 `json:"revision,omitempty"`

	// SizeBytes is the snapshot's size.
	// +optional
	SizeBytes int64 `json:"sizeBytes,omitempty"`

	// SHA256 is the snapshot's SHA-256, hex.
	// +optional
	SHA256 string `json:"sha256,omitempty"`

	// Source is the server (pod) the snapshot was streamed from.
	// +optional
	Source string `json:"source,omitempty"`

	// Message says why a backup failed, or what it waits for.
	// +optional
	Message string `json:"message,omitempty"`

	// Attempts is how many times the backup was tried.
	// +optional
	Attempts int32 `json:"attempts,omitempty"`
}

// KVStoreBackup is one backup of a KVStore: created by a user (kubectl
// apply) or by the KVStore's spec.backup.schedule, and run by the
// operator once.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=kvsbackup;kvsb,categories=all
// +kubebuilder:printcolumn:name="KVStore",type=string,JSONPath=`.spec.kvstoreName`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Revision",type=integer,JSONPath=`.status.revision`
// +kubebuilder:printcolumn:name="Size",type=integer,JSONPath=`.status.sizeBytes`
// +kubebuilder:printcolumn:name="Destination",type=string,JSONPath=`.status.destinationURI`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type KVStoreBackup struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec KVStoreBackupSpec `json:"spec"`
	// +optional
	Status KVStoreBackupStatus `json:"status,omitempty"`
}

// KVStoreBackupList is a list of KVStoreBackups.
//
// +kubebuilder:object:root=true
type KVStoreBackupList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []KVStoreBackup `json:"items"`
}

// LastBackupStatus is the KVStore's newest successful backup.
type LastBackupStatus struct {
	// Name is the KVStoreBackup.
	Name string `json:"name"`
	// CompletionTime is when it succeeded.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// DestinationURI is its data object's URI.
	// +optional
	DestinationURI string `json:"destinationURI,omitempty"`
	// Revision is the store's revision it holds.
	// +optional
	Revision int64 `json:"revision,omitempty"`
	// SizeBytes is its size.
	// +optional
	SizeBytes int64 `json:"sizeBytes,omitempty"`
	// SHA256 is its SHA-256, hex.
	// +optional
	SHA256 string `json:"sha256,omitempty"`
}

// ConditionLastBackupSucceeded is True when the KVStore's last backup
// succeeded, False (with the cause) when it failed.
const ConditionLastBackupSucceeded = "LastBackupSucceeded"

// LabelKVStore labels the KVStoreBackups of a KVStore with its name.
const LabelKVStore = "kvstore.dev/kvstore"

// LabelScheduled marks the KVStoreBackups the schedule created ("true").
const LabelScheduled = "kvstore.dev/scheduled"

func init() {
	SchemeBuilder.Register(&KVStoreBackup{}, &KVStoreBackupList{})
}
