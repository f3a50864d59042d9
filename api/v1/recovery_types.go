package v1

// The types of this file are spec.recovery and status.recovery of a
// KVStore: a recovery from a lost quorum (issue 14), carried out by the
// KVStore controller (internal/controller, recovery.go) only when asked,
// and at most once per request; docs/backup.md, "Lost quorum (operator)".

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RecoverySpec asks the operator for a disaster recovery. Nothing here is
// ever done on the operator's own initiative.
type RecoverySpec struct {
	// ForceNewClusterFrom recovers a store that lost its quorum for good: a
	// majority of its servers unreachable for at least MinUnreachable. The
	// operator picks the surviving server with the highest (last log term,
	// last log index), or the one named, records in status.recovery what
	// may be lost, makes it a one-server cluster, and re-adds the others
	// as fresh members. Writes the lost servers had and the survivor did
	// not are lost.
	// +optional
	ForceNewClusterFrom *ForceNewCluster `json:"forceNewClusterFrom,omitempty"`
}

// ForceNewCluster is a confirmed request to recover from a lost quorum.
// +kubebuilder:validation:XValidation:rule="!has(self.minUnreachable) || duration(self.minUnreachable) >= duration('30s')",message="spec.recovery.forceNewClusterFrom.minUnreachable must be at least 30s"
type ForceNewCluster struct {
	// ConfirmUID must repeat the KVStore's metadata.uid: proof that the
	// request was written for this very object, not copied from another.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	ConfirmUID string `json:"confirmUID"`

	// Member is the server (pod name) to recover from. Empty: the
	// reachable server with the highest (last log term, last log index).
	// +kubebuilder:validation:MaxLength=63
	// +optional
	Member string `json:"member,omitempty"`

	// MinUnreachable is how long a majority must have been unreachable
	// before the operator acts. Default 5m; at least 30s.
	// +optional
	MinUnreachable *metav1.Duration `json:"minUnreachable,omitempty"`
}

// RecoveryPhase is where a recovery stands.
// +kubebuilder:validation:Enum=Waiting;Refused;Recovering;Rejoining;Succeeded;Failed
type RecoveryPhase string

// Phases of a recovery.
const (
	// RecoveryWaiting: the request is valid but the quorum is not yet
	// lost for MinUnreachable (or not lost at all).
	RecoveryWaiting RecoveryPhase = "Waiting"
	// RecoveryRefused: the request is invalid (wrong ConfirmUID, unknown
	// member, no survivor); Message says why.
	RecoveryRefused    RecoveryPhase = "Refused"
	RecoveryRecovering RecoveryPhase = "Recovering"
	// RecoveryRejoining: the survivor serves as a one-server cluster; the
	// other servers are being re-added.
	RecoveryRejoining RecoveryPhase = "Rejoining"
	RecoverySucceeded RecoveryPhase = "Succeeded"
	RecoveryFailed    RecoveryPhase = "Failed"
)

// RecoveryStatus is the operator's record of a recovery.
type RecoveryStatus struct {
	// Phase of the recovery.
	// +optional
	Phase RecoveryPhase `json:"phase,omitempty"`

	// RequestUID is the ConfirmUID of the request this record belongs to.
	// A request is carried out at most once: while
	// spec.recovery.forceNewClusterFrom stays set, a finished record
	// (Succeeded, Failed) stays and nothing is done again. Removing the
	// request clears the record once no recovery is under way; setting it
	// again is a new request. A recovery under way (Recovering, Rejoining)
	// runs to its end even if the request is removed.
	// +optional
	RequestUID string `json:"requestUID,omitempty"`

	// Survivor is the server the cluster was recovered from.
	// +optional
	Survivor string `json:"survivor,omitempty"`

	// LastLogTerm and LastLogIndex are the survivor's Raft log position
	// when it was picked.
	// +optional
	LastLogTerm uint64 `json:"lastLogTerm,omitempty"`
	// +optional
	LastLogIndex uint64 `json:"lastLogIndex,omitempty"`

	// HighestIndexSeen is the highest commit index the operator had seen
	// on any server before the quorum was lost. When it is above
	// LastLogIndex, the entries between may be lost.
	// +optional
	HighestIndexSeen uint64 `json:"highestIndexSeen,omitempty"`

	// PossiblyLost says which entries may be lost, in words.
	// +optional
	PossiblyLost string `json:"possiblyLost,omitempty"`

	// QuorumLostSince is when the operator first saw a majority of the
	// servers unreachable.
	// +optional
	QuorumLostSince *metav1.Time `json:"quorumLostSince,omitempty"`

	// StartTime and CompletionTime of the recovery.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`

	// Message says what the recovery waits for, did, or why it failed.
	// +optional
	Message string `json:"message,omitempty"`
}

// ConditionRecovering is True while a quorum-loss recovery runs.
const ConditionRecovering = "Recovering"
