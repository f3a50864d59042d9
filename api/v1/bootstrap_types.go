package v1

// The types of this file are spec.bootstrap and status.bootstrap (issue
// 14): a new KVStore created from a backup. The operator
// (internal/controller/bootstrap.go) restores the backup with a Job onto
// the first server's volume before it creates the StatefulSet; see
// docs/backup.md, "New KVStore from a backup".

// BootstrapSpec is how a new KVStore gets its first data. It is read only
// while the store has never formed a cluster, and cannot be changed after
// creation.
// +kubebuilder:validation:XValidation:rule="has(self.fromBackup)",message="spec.bootstrap needs fromBackup (the only way to bootstrap so far)"
type BootstrapSpec struct {
	// FromBackup restores a backup onto the first server's empty volume;
	// the other servers join and receive the same state through Raft's
	// snapshot install. The backup's checksum and its snapshot are
	// verified before any server starts; a volume that already holds data
	// is never overwritten.
	// +optional
	FromBackup *BootstrapFromBackup `json:"fromBackup,omitempty"`
}

// BootstrapFromBackup names the backup a new KVStore starts from: a
// Succeeded KVStoreBackup in the same namespace, or a destination with the
// backup's name and SHA-256.
// +kubebuilder:validation:XValidation:rule="has(self.backupName) != has(self.source)",message="spec.bootstrap.fromBackup sets exactly one of backupName and source"
// +kubebuilder:validation:XValidation:rule="!has(self.source) || (has(self.name) && has(self.sha256))",message="spec.bootstrap.fromBackup.source needs name (the backup's name in the destination, kvstore-<time>) and sha256 (from its KVStoreBackup's status or the backup log)"
type BootstrapFromBackup struct {
	// BackupName is a KVStoreBackup in the KVStore's namespace. Its
	// destination, name and SHA-256 are taken from its status; it must
	// have Succeeded.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	BackupName string `json:"backupName,omitempty"`

	// Source is the destination that holds the backup.
	// +optional
	Source *BackupDestination `json:"source,omitempty"`

	// Name is the backup's name in Source (kvstore-<time>).
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9][A-Za-z0-9._-]*$`
	// +optional
	Name string `json:"name,omitempty"`

	// SHA256 is the backup's SHA-256 (64 hex digits). A backup whose data
	// does not match it is refused.
	// +kubebuilder:validation:Pattern=`^[0-9a-f]{64}$`
	// +optional
	SHA256 string `json:"sha256,omitempty"`
}

// BootstrapPhase is where the restore of spec.bootstrap stands.
type BootstrapPhase string

// The phases of a bootstrap from a backup.
const (
	// BootstrapRestoring: the restore Job runs on the first server's volume.
	BootstrapRestoring BootstrapPhase = "Restoring"
	// BootstrapRestored: the backup is on the volume; the servers start.
	BootstrapRestored BootstrapPhase = "Restored"
	// BootstrapFailed: the restore failed (Message); no server starts.
	BootstrapFailed BootstrapPhase = "Failed"
)

// BootstrapStatus records how the store's first data came to be.
type BootstrapStatus struct {
	// Phase is Restoring while the first server restores the backup, then
	// Restored, or Failed (Message says why; no server starts).
	// +kubebuilder:validation:Enum=Restoring;Restored;Failed
	// +optional
	Phase BootstrapPhase `json:"phase,omitempty"`
	// SourceURI is the backup's data object.
	// +optional
	SourceURI string `json:"sourceURI,omitempty"`
	// SHA256 is the verified checksum.
	// +optional
	SHA256 string `json:"sha256,omitempty"`
	// JobName is the restore Job.
	// +optional
	JobName string `json:"jobName,omitempty"`
	// Message says what failed.
	// +optional
	Message string `json:"message,omitempty"`
}
