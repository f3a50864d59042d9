package controller

import (
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8slabels "k8s.io/apimachinery/pkg/labels"

	kvv1 "kvstore.dev/kvstore/api/v1"
	"kvstore.dev/kvstore/wire"
)

// ProgressDeadline is how long pods may stay unready after a change before
// the KVStore is reported Degraded (as a Deployment's
// progressDeadlineSeconds).
const ProgressDeadline = 10 * time.Minute

// problem is something that keeps the operator from bringing a KVStore to
// its spec: it becomes the Degraded condition's reason and message.
type problem struct {
	reason  string
	message string
}

func (p *problem) Error() string { return p.reason + ": " + p.message }

// statusInputs is what the status is computed from.
type statusInputs struct {
	sts *appsv1.StatefulSet // as observed, nil when it did not exist
	// stsWritten is whether this reconcile wrote the StatefulSet after
	// observing it: its controller has not acted on that yet.
	stsWritten bool
	problem    *problem     // nil when reconciling went through
	tls        *tlsMaterial // operator-issued certificate, if any
	names      names
	now        time.Time
	endpoint   string
	// view is the cluster as the servers reported it (nil: they were not
	// asked or did not answer; the last seen members stay).
	view *wire.ClusterStatus
	// membershipPending says why membership is not settled ("" when it is).
	membershipPending string
	// recovery is the recovery step, nil when the plan stopped before it
	// (status.recovery and the Recovering condition stay as they were).
	recovery *recoveryStep
	// bootstrap is status.bootstrap as planned (nil: kv's is kept).
	bootstrap *kvv1.BootstrapStatus
}

// desiredStatus computes kv's status from what was observed. Conditions keep
// their LastTransitionTime while their status is unchanged.
func desiredStatus(kv *kvv1.KVStore, in statusInputs) kvv1.KVStoreStatus {
	st := kvv1.KVStoreStatus{
		ObservedGeneration: kv.Generation,
		Selector:           k8slabels.SelectorFromSet(selectorLabels(kv)).String(),
		Endpoint:           in.endpoint,
		TLSSecretName:      in.names.tls,
		AuthSecretName:     in.names.auth,
		Conditions:         append([]metav1.Condition(nil), kv.Status.Conditions...),
		Leader:             kv.Status.Leader,
		Members:            kv.Status.Members,
		// The backup controller's: kept as they are (its condition,
		// LastBackupSucceeded, is kept with the others above).
		LastBackup: kv.Status.LastBackup,
		Bootstrap:  kv.Status.Bootstrap,
	}
	if in.bootstrap != nil {
		st.Bootstrap = in.bootstrap
	}
	if in.view != nil {
		st.Leader, st.Members = memberStatus(kv, in.view)
	}
	if in.recovery != nil {
		st.Recovery = in.recovery.status
		if c := in.recovery.condition; c != nil {
			c := *c
			c.LastTransitionTime = metav1.NewTime(in.now.UTC().Truncate(time.Second))
			meta.SetStatusCondition(&st.Conditions, c)
		} else {
			meta.RemoveStatusCondition(&st.Conditions, kvv1.ConditionRecovering)
		}
	} else {
		st.Recovery = kv.Status.Recovery
	}
	if in.tls != nil {
		t := metav1.NewTime(in.tls.notAfter.UTC().Truncate(time.Second))
		st.CertificateNotAfter = &t
	}
	want := replicas(kv)
	gen := kv.Generation
	set := func(c metav1.Condition) {
		c.LastTransitionTime = metav1.NewTime(in.now.UTC().Truncate(time.Second))
		meta.SetStatusCondition(&st.Conditions, c)
	}

	var ready int32
	if in.sts != nil {
		st.Replicas = in.sts.Status.Replicas
		ready = in.sts.Status.ReadyReplicas
		st.ReadyReplicas = ready
	}

	// Available: a quorum of servers is ready.
	switch {
	case ready >= quorum(want):
		set(condition(kvv1.ConditionAvailable, metav1.ConditionTrue, "QuorumReady", fmt.Sprintf("%d of %d servers are ready", ready, want), gen))
	case ready == 0:
		set(condition(kvv1.ConditionAvailable, metav1.ConditionFalse, "NoReadyReplicas", fmt.Sprintf("0 of %d servers are ready", want), gen))
	default:
		set(condition(kvv1.ConditionAvailable, metav1.ConditionFalse, "NotEnoughReadyReplicas", fmt.Sprintf("%d of %d servers are ready; %d are needed", ready, want, quorum(want)), gen))
	}

	// Progressing: the StatefulSet is being created, rolled or scaled, or
	// its pods are not all ready yet.
	reason, msg := rollout(in.sts, want)
	switch {
	case in.stsWritten && (in.sts == nil || in.sts.Status.ObservedGeneration == 0):
		reason, msg = "Creating", "the StatefulSet controller has not acted on the StatefulSet yet"
	case in.stsWritten:
		reason, msg = "RollingOut", "the StatefulSet controller has not seen the latest spec yet"
	}
	if b := st.Bootstrap; in.sts == nil && b != nil && b.Phase == kvv1.BootstrapRestoring {
		reason, msg = "Restoring", fmt.Sprintf("Job %s restores %s onto the first server's volume", b.JobName, b.SourceURI)
	}
	if reason == "" && in.membershipPending != "" {
		reason, msg = "ChangingMembership", in.membershipPending
	}
	if reason != "" {
		set(condition(kvv1.ConditionProgressing, metav1.ConditionTrue, reason, msg, gen))
	} else {
		set(condition(kvv1.ConditionProgressing, metav1.ConditionFalse, "RolloutComplete", fmt.Sprintf("%d servers are up to date and ready", want), gen))
	}

	// Degraded: the operator hit a problem, or pods stayed unready past the
	// progress deadline.
	progressing := meta.FindStatusCondition(st.Conditions, kvv1.ConditionProgressing)
	switch {
	case in.problem != nil:
		set(condition(kvv1.ConditionDegraded, metav1.ConditionTrue, in.problem.reason, in.problem.message, gen))
	case progressing.Status == metav1.ConditionTrue && in.now.Sub(progressing.LastTransitionTime.Time) >= ProgressDeadline:
		set(condition(kvv1.ConditionDegraded, metav1.ConditionTrue, "ProgressDeadlineExceeded",
			fmt.Sprintf("%s for more than %v: %s", progressing.Reason, ProgressDeadline, progressing.Message), gen))
	default:
		set(condition(kvv1.ConditionDegraded, metav1.ConditionFalse, "AsExpected", "the store matches its spec", gen))
	}
	return st
}

// rollout says why the StatefulSet is not done, or "" when it is.
func rollout(sts *appsv1.StatefulSet, want int32) (reason, message string) {
	switch {
	case sts == nil:
		return "Creating", "the StatefulSet is being created"
	case sts.Status.ObservedGeneration == 0:
		return "Creating", "the StatefulSet controller has not acted on the StatefulSet yet"
	case sts.Status.ObservedGeneration < sts.Generation:
		return "RollingOut", "the StatefulSet controller has not seen the latest spec yet"
	case sts.Status.Replicas != want:
		return "Scaling", fmt.Sprintf("%d servers exist, %d wanted", sts.Status.Replicas, want)
	case sts.Status.UpdateRevision != "" && sts.Status.CurrentRevision != sts.Status.UpdateRevision,
		sts.Status.UpdatedReplicas < want:
		return "RollingOut", fmt.Sprintf("%d of %d servers are up to date", sts.Status.UpdatedReplicas, want)
	case sts.Status.ReadyReplicas < want:
		return "WaitingForReadyReplicas", fmt.Sprintf("%d of %d servers are ready", sts.Status.ReadyReplicas, want)
	}
	return "", ""
}

// statusEqual ignores nothing: two statuses are equal when a write would not
// change the stored object.
func statusEqual(a, b kvv1.KVStoreStatus) bool { return equality.Semantic.DeepEqual(a, b) }
