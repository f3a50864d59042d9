package controller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
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

// secretRefIndex indexes KVStores by the user Secrets they reference.
const secretRefIndex = "spec.secretRefs"

// +kubebuilder:rbac:groups=kvstore.dev,resources=kvstores,verbs=get;list;watch
// +kubebuilder:rbac:groups=kvstore.dev,resources=kvstores/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=kvstore.dev,resources=kvstores/finalizers,verbs=update
// +kubebuilder:rbac:groups=apps,resources=statefulsets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=services;configmaps;secrets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=networking.k8s.io,resources=ingresses,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=monitoring.coreos.com,resources=servicemonitors,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=cert-manager.io,resources=certificates,verbs=get;list;watch;create;update;patch;delete
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
	st := desiredStatus(kv, in)
	if !statusEqual(st, kv.Status) {
		// A merge patch without a resourceVersion: the operator is the only
		// writer of the status and writes all of it, so a concurrent spec
		// change need not make this fail.
		base := kv.DeepCopy()
		kv.Status = st
		if uErr := r.Client.Status().Patch(ctx, kv, client.MergeFrom(base)); uErr != nil {
			return reconcile.Result{}, errors.Join(err, fmt.Errorf("update status: %w", uErr))
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
	return reconcile.Result{RequeueAfter: after}, nil
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
// child kind it owns, and the user Secrets KVStores reference.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &kvv1.KVStore{}, secretRefIndex, func(o client.Object) []string {
		kv := o.(*kvv1.KVStore)
		var refs []string
		for _, s := range append([]string{kv.Spec.TLS.SecretName, kv.Spec.Auth.SecretName}, tokenSecretNames(kv)...) {
			if s != "" {
				refs = append(refs, s)
			}
		}
		return refs
	}); err != nil {
		return fmt.Errorf("index KVStores by secret: %w", err)
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("kvstore").
		For(&kvv1.KVStore{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Owns(&appsv1.StatefulSet{}).
		Owns(&corev1.Service{}).
		Owns(&corev1.ConfigMap{}).
		Owns(&corev1.Secret{}).
		Owns(&policyv1.PodDisruptionBudget{}).
		Owns(&networkingv1.Ingress{}).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.kvstoresReferencing)).
		Complete(r)
}

// kvstoresReferencing maps a Secret to the KVStores that name it in
// spec.tls.secretName, spec.auth.secretName or spec.auth.tokens.
func (r *Reconciler) kvstoresReferencing(ctx context.Context, o client.Object) []reconcile.Request {
	var list kvv1.KVStoreList
	if err := r.Client.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{secretRefIndex: o.GetName()}); err != nil {
		logf.FromContext(ctx).Error(err, "list KVStores referencing a Secret", "secret", o.GetName())
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for _, kv := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: kv.Namespace, Name: kv.Name}})
	}
	return reqs
}
