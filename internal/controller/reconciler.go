package controller

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	kvv1 "kvstore.dev/kvstore/api/v1"
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
// its status.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	kv := &kvv1.KVStore{}
	if err := r.Client.Get(ctx, req.NamespacedName, kv); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if !kv.DeletionTimestamp.IsZero() {
		return reconcile.Result{}, nil // the garbage collector deletes the children
	}
	now := r.now()
	n := namesFor(kv)
	rc := &run{r: r, kv: kv, names: n}

	err := rc.children(ctx, now)
	var p *problem
	if err != nil && !errors.As(err, &p) {
		p = &problem{reason: "ReconcileError", message: err.Error()}
	}
	if p != nil {
		// One event per new problem, not one per reconcile: a KVStore that
		// stays degraded must not keep writing events.
		if c := meta.FindStatusCondition(kv.Status.Conditions, kvv1.ConditionDegraded); c == nil || c.Reason != p.reason || c.Message != p.message {
			r.Recorder.Eventf(kv, nil, corev1.EventTypeWarning, p.reason, "Reconcile", "%s", p.message)
		}
	}

	sts := &appsv1.StatefulSet{}
	if getErr := r.Client.Get(ctx, types.NamespacedName{Namespace: kv.Namespace, Name: n.kv}, sts); getErr != nil {
		if !apierrors.IsNotFound(getErr) {
			return reconcile.Result{}, errors.Join(err, getErr)
		}
		sts = nil
	}
	st := desiredStatus(kv, statusInputs{sts: sts, problem: p, tls: rc.tls, names: n, now: now, endpoint: endpoint(kv, r.Options),
		view: rc.view, membershipPending: rc.membershipPending})
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
	if err != nil && !errors.As(err, &p) {
		return reconcile.Result{}, err // retried with backoff
	}
	after := rc.requeueAfter(now, st)
	if rc.membershipPending != "" && (after == 0 || after > membershipRetry) {
		after = membershipRetry // membership changes are not watched: look again soon
	}
	if p != nil && (after == 0 || after > problemRetry) {
		after = problemRetry // for what no watch reports, like cert-manager's CRD appearing
	}
	return reconcile.Result{RequeueAfter: after}, nil
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

// run is the state of one reconcile of one KVStore.
type run struct {
	r     *Reconciler
	kv    *kvv1.KVStore
	names names
	tls   *tlsMaterial // set when the operator issues the certificate

	view              *ClusterView // the cluster as the servers reported it, if they did
	membershipPending string       // why membership is not settled yet
}

// children applies every child object, in dependency order: Secrets and
// config before the StatefulSet that mounts them.
func (rc *run) children(ctx context.Context, now time.Time) error {
	kv := rc.kv
	token, err := rc.authToken(ctx)
	if err != nil {
		return err
	}
	if err := rc.certificate(ctx, now); err != nil {
		return err
	}
	peerToken, err := rc.generatedToken(ctx, rc.names.peer, desiredPeerSecret)
	if err != nil {
		return err
	}
	cm := desiredConfigMap(kv, rc.r.Options)
	if err := rc.apply(ctx, &corev1.ConfigMap{}, cm, extractConfigMap); err != nil {
		return err
	}
	if err := rc.apply(ctx, &corev1.Service{}, desiredPeersService(kv), extractService); err != nil {
		return err
	}
	if err := rc.apply(ctx, &corev1.Service{}, desiredClientService(kv), extractService); err != nil {
		return err
	}
	hash := configHash(cm.Data[configFile], token, peerToken)
	var current int32
	live := &appsv1.StatefulSet{}
	if err := rc.r.Client.Get(ctx, types.NamespacedName{Namespace: kv.Namespace, Name: kv.Name}, live); err == nil && live.Spec.Replicas != nil {
		current = *live.Spec.Replicas
	}
	stsReplicas := rc.membership(ctx, token, current)
	if err := rc.apply(ctx, &appsv1.StatefulSet{}, desiredStatefulSet(kv, rc.r.Options, hash, stsReplicas), extractStatefulSet); err != nil {
		return err
	}
	budget, err := rc.pdbBudget(ctx, current)
	if err != nil {
		return err
	}
	if err := rc.apply(ctx, &policyv1.PodDisruptionBudget{}, desiredPDB(kv, budget), extractPDB); err != nil {
		return err
	}
	for _, ing := range desiredIngresses(kv) {
		if kv.Spec.Ingress.Enabled {
			err = rc.apply(ctx, &networkingv1.Ingress{}, ing, extractIngress)
		} else {
			err = rc.deleteOwned(ctx, &networkingv1.Ingress{}, *ing.Name)
		}
		if err != nil {
			return err
		}
	}
	if err := rc.serviceMonitor(ctx); err != nil {
		return err
	}
	return nil
}

// pdbBudget observes what the PodDisruptionBudget is planned from, after
// the membership step, and plans it (pdbMaxUnavailable). The step is
// recomputed from the same inputs membership used: nextStep is pure.
func (rc *run) pdbBudget(ctx context.Context, current int32) (int32, error) {
	kv := rc.kv
	in := pdbInputs{view: rc.view, lastMembers: kv.Status.Members}
	if rc.view != nil {
		in.step = nextStep(kv, current, rc.view)
	}
	live := &policyv1.PodDisruptionBudget{}
	switch err := rc.r.Client.Get(ctx, types.NamespacedName{Namespace: kv.Namespace, Name: rc.names.kv}, live); {
	case err == nil:
		in.live = liveMaxUnavailable(live, kv)
	case !apierrors.IsNotFound(err):
		return 0, fmt.Errorf("get PodDisruptionBudget %s: %w", rc.names.kv, err)
	}
	return pdbMaxUnavailable(kv, in), nil
}

// authToken returns the admin token: read from the user's Secret, or from
// the operator's <name>-auth, which is created with a random token when
// missing and otherwise left as it is.
func (rc *run) authToken(ctx context.Context) (string, error) {
	n := rc.names
	if n.userAuth {
		s := &corev1.Secret{}
		err := rc.r.Client.Get(ctx, types.NamespacedName{Namespace: n.namespace, Name: n.auth}, s)
		if err != nil && !apierrors.IsNotFound(err) {
			return "", fmt.Errorf("get Secret %s: %w", n.auth, err)
		}
		found := err == nil
		switch {
		case !found:
			return "", &problem{"AuthSecretNotFound", fmt.Sprintf("Secret %s (spec.auth.secretName) does not exist in namespace %s; create it with the admin token under key %q", n.auth, n.namespace, AuthTokenKey)}
		case len(s.Data[AuthTokenKey]) == 0:
			return "", &problem{"AuthSecretInvalid", fmt.Sprintf("Secret %s (spec.auth.secretName) has no key %q holding the admin token", n.auth, AuthTokenKey)}
		}
		return string(s.Data[AuthTokenKey]), nil
	}
	return rc.generatedToken(ctx, n.auth, desiredAuthSecret)
}

// generatedToken returns the token in the operator's Secret name, which is
// created with a random token when missing (or without one) and otherwise
// left as it is: a token is never rotated behind the user's back.
func (rc *run) generatedToken(ctx context.Context, name string, build func(*kvv1.KVStore, string) *corev1ac.SecretApplyConfiguration) (string, error) {
	kv := rc.kv
	s := &corev1.Secret{}
	err := rc.r.Client.Get(ctx, types.NamespacedName{Namespace: kv.Namespace, Name: name}, s)
	if err != nil && !apierrors.IsNotFound(err) {
		return "", fmt.Errorf("get Secret %s: %w", name, err)
	}
	token := ""
	if err == nil {
		if !metav1IsControlledBy(s, kv) {
			return "", &problem{"ChildConflict", fmt.Sprintf("Secret %s exists and is not owned by this KVStore; delete it or bring your own through the spec", name)}
		}
		token = string(s.Data[AuthTokenKey])
	}
	generated := token == ""
	if generated {
		if token, err = rc.r.newToken(); err != nil {
			return "", err
		}
	}
	if err := rc.apply(ctx, &corev1.Secret{}, build(kv, token), extractSecret); err != nil {
		return "", err
	}
	if generated {
		rc.r.Recorder.Eventf(kv, nil, corev1.EventTypeNormal, "TokenGenerated", "Generate", "generated a random token into Secret %s", name)
	}
	return token, nil
}

// newToken makes a random admin token: 32 bytes, base64url.
func (r *Reconciler) newToken() (string, error) {
	src := r.Rand
	if src == nil {
		src = rand.Reader
	}
	b := make([]byte, 32)
	if _, err := io.ReadFull(src, b); err != nil {
		return "", fmt.Errorf("generate admin token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// certificate makes sure the TLS Secret exists and is current: a user's is
// checked and never written; a cert-manager Certificate is applied; else the
// operator issues (and re-issues) it.
func (rc *run) certificate(ctx context.Context, now time.Time) error {
	kv, n := rc.kv, rc.names
	switch {
	case n.userTLS:
		s := &corev1.Secret{}
		if err := rc.r.Client.Get(ctx, types.NamespacedName{Namespace: n.namespace, Name: n.tls}, s); err != nil {
			if apierrors.IsNotFound(err) {
				return &problem{"TLSSecretNotFound", fmt.Sprintf("Secret %s (spec.tls.secretName) does not exist in namespace %s; create a kubernetes.io/tls Secret", n.tls, n.namespace)}
			}
			return fmt.Errorf("get Secret %s: %w", n.tls, err)
		}
		if err := checkUserTLS(string(s.Type), s.Data); err != nil {
			return &problem{"TLSSecretInvalid", fmt.Sprintf("Secret %s (spec.tls.secretName): %v", n.tls, err)}
		}
		return nil
	case n.certIssuer:
		return rc.certManagerCertificate(ctx)
	}
	data := func(name string) (map[string][]byte, error) {
		s := &corev1.Secret{}
		err := rc.r.Client.Get(ctx, types.NamespacedName{Namespace: n.namespace, Name: name}, s)
		switch {
		case apierrors.IsNotFound(err):
			return nil, nil
		case err != nil:
			return nil, fmt.Errorf("get Secret %s: %w", name, err)
		case !metav1IsControlledBy(s, kv):
			return nil, &problem{"ChildConflict", fmt.Sprintf("Secret %s exists and is not owned by this KVStore; delete it or set spec.tls.secretName to it", name)}
		}
		return s.Data, nil
	}
	caData, err := data(n.ca)
	if err != nil {
		return err
	}
	tlsData, err := data(n.tls)
	if err != nil {
		return err
	}
	m, reason, err := decideTLS(caData, tlsData, tlsHosts(kv, rc.r.Options), now)
	if err != nil {
		return err
	}
	rc.tls = &m
	ca, tls := desiredTLSSecrets(kv, m)
	if err := rc.apply(ctx, &corev1.Secret{}, ca, extractSecret); err != nil {
		return err
	}
	if err := rc.apply(ctx, &corev1.Secret{}, tls, extractSecret); err != nil {
		return err
	}
	if reason != tlsKept {
		rc.r.Recorder.Eventf(kv, nil, corev1.EventTypeNormal, "Certificate"+reason, "IssueCertificate",
			"issued a certificate into Secret %s valid until %s (%s)", n.tls, m.notAfter.UTC().Format(time.RFC3339), reason)
	}
	return nil
}

// requeueAfter is when the KVStore must be looked at again without any
// event: at the certificate's renewal time, or at the progress deadline.
func (rc *run) requeueAfter(now time.Time, st kvv1.KVStoreStatus) time.Duration {
	var next time.Duration
	consider := func(at time.Time) {
		if d := at.Sub(now); d > 0 && (next == 0 || d < next) {
			next = d
		}
	}
	if rc.tls != nil {
		consider(rc.tls.renewAt)
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
		for _, s := range []string{kv.Spec.TLS.SecretName, kv.Spec.Auth.SecretName} {
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
// spec.tls.secretName or spec.auth.secretName.
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
