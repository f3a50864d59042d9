package controller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kvv1 "kvstore.dev/kvstore/api/v1"
	"kvstore.dev/kvstore/wire"
)

// Reconciler reconciles KVStores. Its fields are set once before
// SetupWithManager and not changed after; Reconcile is safe for concurrent
// use on different KVStores.
type Reconciler struct {
	// Client reads from the manager's cache and writes to the API server.
	Client client.Client
	// APIReader reads the user's Secrets, which the cache does not hold
	// (CacheOptions), from the API server; nil: Client (tests whose cache
	// holds every Secret).
	APIReader client.Reader
	// Recheck is how often a KVStore naming a user Secret is reconciled
	// again (UserSecretRecheck when zero).
	Recheck time.Duration
	// Recorder records events on KVStores.
	Recorder events.EventRecorder
	// Options are the operator-wide inputs of the builders.
	Options BuildOptions
	// Now is the clock (time.Now when nil); tests move it forward to make
	// certificates due for renewal.
	Now func() time.Time
	// Rand is the source of generated tokens (crypto/rand when nil).
	Rand io.Reader
	// Cluster reaches the servers' cluster API for membership changes; nil
	// leaves membership alone (the StatefulSet follows spec.replicas, but
	// never shrinks).
	Cluster ClusterClient

	missing sync.Map // schema.GroupVersionKind -> time.Time: optional CRDs not installed, until when
}

// The operator's RBAC, least privilege (config/rbac/role.yaml is generated
// from these markers; docs/operator.md explains each verb). Reads of
// children go through the cache (list, watch); writes are server-side
// apply patches (patch, and create for a new object); user Secrets are read
// through the API reader (get); only what the spec can turn off is deleted.
// kvstores/finalizers update: the children's owner references set
// blockOwnerDeletion, which the OwnerReferencesPermissionEnforcement
// admission plugin allows only to who may update the owner's finalizers.
//
// +kubebuilder:rbac:groups=kvstore.dev,resources=kvstores,verbs=list;watch
// +kubebuilder:rbac:groups=kvstore.dev,resources=kvstores/status,verbs=patch
// +kubebuilder:rbac:groups=kvstore.dev,resources=kvstores/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups="",resources=configmaps;services,verbs=list;watch;create;patch
// +kubebuilder:rbac:groups=apps,resources=statefulsets,verbs=list;watch;create;patch
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=list;watch;create
// +kubebuilder:rbac:groups="",resources=persistentvolumeclaims,verbs=get;create
// +kubebuilder:rbac:groups="",resources=pods,verbs=list
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=list;watch;create;patch
// +kubebuilder:rbac:groups=networking.k8s.io,resources=ingresses;networkpolicies,verbs=list;watch;create;patch;delete
// +kubebuilder:rbac:groups=monitoring.coreos.com,resources=servicemonitors,verbs=list;watch;create;patch
// +kubebuilder:rbac:groups=cert-manager.io,resources=certificates,verbs=list;watch;create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile brings one KVStore's children to their desired state and writes
// its status: observe (read everything once), plan (decide, purely), act
// (apply in dependency order, at most one membership call), then the status
// from the observation and the plan, written only when it changed.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	kv := &kvv1.KVStore{}
	if err := r.Client.Get(ctx, req.NamespacedName, kv); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if !kv.DeletionTimestamp.IsZero() {
		return reconcile.Result{}, nil // the garbage collector deletes the children
	}
	now := r.now()
	obs, err := r.observe(ctx, kv)
	if err != nil {
		return reconcile.Result{}, err // retried with backoff
	}
	p, err := planFor(kv, obs, r.Options, now, r.Rand)
	stsWritten, actErr := r.act(ctx, kv, obs, p)
	if actErr != nil {
		err = actErr // it stopped at a child before the plan's error
	}
	var prob *problem
	if err != nil && !errors.As(err, &prob) {
		prob = &problem{reason: "ReconcileError", message: err.Error()}
	}
	if prob != nil {
		// One event per new problem, not one per reconcile: a KVStore that
		// stays degraded must not keep writing events.
		if c := meta.FindStatusCondition(kv.Status.Conditions, kvv1.ConditionDegraded); c == nil || c.Reason != prob.reason || c.Message != prob.message {
			r.Recorder.Eventf(kv, nil, corev1.EventTypeWarning, prob.reason, "Reconcile", "%s", prob.message)
		}
	}
	in := statusInputs{sts: obs.statefulSet(namesFor(kv)), stsWritten: stsWritten, problem: prob, tls: p.tls, names: namesFor(kv),
		now: now, endpoint: endpoint(kv, r.Options), view: obs.view}
	if p.step != nil {
		in.membershipPending = p.step.pending
	}
	in.recovery = p.recovery
	if p.bootstrap != nil {
		in.bootstrap = p.bootstrap.status
	}
	st := desiredStatus(kv, in)
	if !statusEqual(st, kv.Status) {
		written, uErr := writeStatus(ctx, r.Client, kv, st)
		if uErr != nil {
			return reconcile.Result{}, errors.Join(err, fmt.Errorf("update status: %w", uErr))
		}
		if !written {
			// The KVStore changed since the cache's copy: look again at the
			// new one rather than write a status computed from the old.
			return reconcile.Result{Requeue: true}, nil
		}
	}
	if err != nil && !errors.As(err, &prob) {
		return reconcile.Result{}, err // retried with backoff
	}
	after := requeueAfter(now, p.renewAt, st)
	if in.membershipPending != "" && (after == 0 || after > membershipRetry) {
		after = membershipRetry // membership changes are not watched: look again soon
	}
	after = serversResync(after, in.sts != nil, obs.view)
	if prob != nil && (after == 0 || after > problemRetry) {
		after = problemRetry // for what no watch reports, like cert-manager's CRD appearing
	}
	if n := namesFor(kv); (n.userTLS || n.userAuth || len(kv.Spec.Auth.Tokens) > 0) && (after == 0 || after > r.recheck()) {
		after = r.recheck() // user Secrets are not watched: read them again
	}
	return reconcile.Result{RequeueAfter: after}, nil
}

// writeStatus sets kv's status to st with a merge patch guarded by kv's
// resourceVersion, and reports false, writing nothing, when the stored
// KVStore is newer than kv (a conflict). The status is not the KVStore
// reconciler's alone: the backup controller sets status.lastBackup and the
// LastBackupSucceeded condition (the KVStore reconciler carries them over
// from what it read), and a merge patch replaces the conditions list whole,
// so a patch computed from a stale cached copy would drop a condition
// written since.
func writeStatus(ctx context.Context, c client.Client, kv *kvv1.KVStore, st kvv1.KVStoreStatus) (bool, error) {
	base := kv.DeepCopy()
	kv.Status = st
	err := c.Status().Patch(ctx, kv, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
	if apierrors.IsConflict(err) {
		return false, nil
	}
	return err == nil, err
}

// leaderRetry is how soon a KVStore whose servers named no leader (or did
// not answer) is looked at again, so that status.leader follows an
// election within seconds.
const leaderRetry = 3 * time.Second

// statusRefresh is the longest a KVStore goes without being looked at:
// status.leader and status.members come from the servers, whose elections
// and membership changes make no Kubernetes event.
const statusRefresh = 30 * time.Second

// serversResync shortens after (0: no requeue) for what the servers, not
// Kubernetes, report: every statusRefresh at the latest, and every
// leaderRetry while a StatefulSet exists whose servers named no leader or
// did not answer.
func serversResync(after time.Duration, haveStatefulSet bool, view *wire.ClusterStatus) time.Duration {
	limit := statusRefresh
	if haveStatefulSet && (view == nil || view.LeaderID == "") {
		limit = leaderRetry
	}
	if after == 0 || after > limit {
		return limit
	}
	return after
}

// problemRetry is how soon a KVStore with a problem is looked at again.
const problemRetry = time.Minute

// membershipRetry is how soon a KVStore whose membership is changing is
// looked at again.
const membershipRetry = 2 * time.Second

func (r *Reconciler) recheck() time.Duration {
	if r.Recheck > 0 {
		return r.Recheck
	}
	return UserSecretRecheck
}

func (r *Reconciler) apiReader() client.Reader {
	if r.APIReader != nil {
		return r.APIReader
	}
	return r.Client
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// requeueAfter is when the KVStore must be looked at again without any
// event: when a certificate or CA phase falls due (renewAt, zero for
// none), or at the progress deadline.
func requeueAfter(now time.Time, renewAt time.Time, st kvv1.KVStoreStatus) time.Duration {
	var next time.Duration
	consider := func(at time.Time) {
		if d := at.Sub(now); d > 0 && (next == 0 || d < next) {
			next = d
		}
	}
	if !renewAt.IsZero() {
		consider(renewAt)
	}
	if c := meta.FindStatusCondition(st.Conditions, kvv1.ConditionProgressing); c != nil && c.Status == "True" {
		consider(c.LastTransitionTime.Add(ProgressDeadline + time.Second))
	}
	return next
}

// SetupWithManager registers the controller: it watches KVStores, every
// child kind it owns, and the KVStoreBackups a restore waits for. The user's Secrets are not watched (the cache holds
// only the operator's own, see CacheOptions): Reconcile requeues a KVStore
// that names one every Recheck.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("kvstore").
		For(&kvv1.KVStore{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Owns(&appsv1.StatefulSet{}).
		Owns(&batchv1.Job{}).
		Owns(&corev1.Service{}).
		Owns(&corev1.ConfigMap{}).
		Owns(&corev1.Secret{}).
		Owns(&policyv1.PodDisruptionBudget{}).
		Owns(&networkingv1.Ingress{}).
		Owns(&networkingv1.NetworkPolicy{}).
		Watches(&kvv1.KVStoreBackup{}, handler.EnqueueRequestsFromMapFunc(r.restoringFrom)).
		Complete(r)
}

// restoringFrom maps a KVStoreBackup to the KVStores of its namespace that
// wait to be restored from it (spec.bootstrap.fromBackup.backupName, not
// Restored or Failed yet), so that a restore waiting for a Running backup
// starts when the backup succeeds rather than at the next problemRetry.
func (r *Reconciler) restoringFrom(ctx context.Context, o client.Object) []reconcile.Request {
	var list kvv1.KVStoreList
	if err := r.Client.List(ctx, &list, client.InNamespace(o.GetNamespace())); err != nil {
		return nil // the KVStore is looked at again after problemRetry anyway
	}
	var reqs []reconcile.Request
	for i := range list.Items {
		kv := &list.Items[i]
		b := kv.Spec.Bootstrap
		if b == nil || b.FromBackup == nil || b.FromBackup.BackupName != o.GetName() {
			continue
		}
		if st := kv.Status.Bootstrap; st != nil && (st.Phase == kvv1.BootstrapRestored || st.Phase == kvv1.BootstrapFailed) {
			continue
		}
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(kv)})
	}
	return reqs
}
