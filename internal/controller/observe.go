package controller

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kvv1 "kvstore.dev/kvstore/api/v1"
	"kvstore.dev/kvstore/wire"
)

// objKey names an object of a KVStore's namespace: its kind ("Secret",
// "ServiceMonitor") and name.
type objKey struct{ kind, name string }

func keyOf(o client.Object) objKey {
	if u, ok := o.(*unstructured.Unstructured); ok {
		return objKey{u.GetKind(), u.GetName()}
	}
	return objKey{kindOf(o), o.GetName()}
}

// observed is everything one reconcile decides from, each object read once:
// the KVStore's children and Secrets from the cache, whether the optional
// CRDs are installed, and the cluster as its servers report it.
type observed struct {
	// objects are the children and Secrets that exist, by kind and name.
	objects map[objKey]client.Object
	// installed is which optional kinds the cluster serves (only those the
	// KVStore would use are looked up).
	installed map[schema.GroupVersionKind]bool
	// view is the Raft configuration from the servers, nil when they were
	// not asked (no ClusterClient or no token yet) or did not answer.
	view *wire.ClusterStatus
	// probed is whether the pods were asked one by one, by their own
	// addresses, because the client Service named no leader (the
	// recovery's observation, recovery.go); pods are the answers, by pod
	// name.
	probed bool
	pods   map[string]wire.ClusterStatus
	// bootstrap is what a restore of spec.bootstrap is decided from, nil
	// when the KVStore may not restore (mayRestore).
	bootstrap *bootstrapObserved
}

// secret is the observed Secret name, nil when absent.
func (o *observed) secret(name string) *corev1.Secret {
	s, _ := o.objects[objKey{"Secret", name}].(*corev1.Secret)
	return s
}

// statefulSet is the observed StatefulSet, nil when absent.
func (o *observed) statefulSet(n names) *appsv1.StatefulSet {
	s, _ := o.objects[objKey{"StatefulSet", n.kv}].(*appsv1.StatefulSet)
	return s
}

// adminToken is the admin token of the observed auth Secret: the user's,
// or the operator's own; "" when there is none (yet).
func (o *observed) adminToken(kv *kvv1.KVStore, n names) string {
	s := o.secret(n.auth)
	if s == nil || !n.userAuth && !metav1IsControlledBy(s, kv) {
		return ""
	}
	return string(s.Data[AuthTokenKey])
}

// access is how the servers are reached: the admin token and the CA
// bundle of the operator's <name>-pod-tls (empty when either is missing).
func (o *observed) access(kv *kvv1.KVStore, n names) ServerAccess {
	a := ServerAccess{Token: o.adminToken(kv, n)}
	if s := o.secret(n.podTLS); s != nil && metav1IsControlledBy(s, kv) {
		a.CABundle = s.Data[caCertKey]
	}
	return a
}

// observe reads what kv's plan is made from.
func (r *Reconciler) observe(ctx context.Context, kv *kvv1.KVStore) (*observed, error) {
	n := namesFor(kv)
	obs := &observed{objects: map[objKey]client.Object{}, installed: map[schema.GroupVersionKind]bool{}}
	om := func(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Namespace: n.namespace, Name: name} }
	reads := []client.Object{
		&corev1.Secret{ObjectMeta: om(n.auth)}, &corev1.Secret{ObjectMeta: om(n.peer)},
		&corev1.Secret{ObjectMeta: om(n.tls)}, &corev1.Secret{ObjectMeta: om(n.ca)}, &corev1.Secret{ObjectMeta: om(n.caBundle)},
		&corev1.Secret{ObjectMeta: om(n.podTLS)}, &corev1.Secret{ObjectMeta: om(n.tokens)},
		&corev1.ConfigMap{ObjectMeta: om(n.config)},
		&corev1.Service{ObjectMeta: om(n.peers)}, &corev1.Service{ObjectMeta: om(n.kv)},
		&appsv1.StatefulSet{ObjectMeta: om(n.kv)},
		&policyv1.PodDisruptionBudget{ObjectMeta: om(n.kv)},
		&networkingv1.Ingress{ObjectMeta: om(n.kv)}, &networkingv1.Ingress{ObjectMeta: om(n.watch)},
		&networkingv1.NetworkPolicy{ObjectMeta: om(n.kv)},
	}
	user := map[string]bool{} // the user's Secrets: not in the cache
	if n.userTLS {
		user[n.tls] = true
	}
	if n.userAuth {
		user[n.auth] = true
	}
	for _, name := range tokenSecretNames(kv) {
		if _, dup := map[string]bool{n.auth: true, n.peer: true, n.tls: true, n.ca: true, n.caBundle: true, n.podTLS: true, n.tokens: true}[name]; !dup {
			reads = append(reads, &corev1.Secret{ObjectMeta: om(name)})
			user[name] = true
		}
	}
	optional := []schema.GroupVersionKind{serviceMonitorGVK}
	if n.certIssuer {
		optional = append(optional, certificateGVK)
	}
	for _, gvk := range optional {
		ok, err := r.installed(gvk)
		if err != nil {
			return nil, err
		}
		obs.installed[gvk] = ok
		if ok {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(gvk)
			u.SetNamespace(n.namespace)
			u.SetName(kv.Name)
			reads = append(reads, u)
		}
	}
	for _, o := range reads {
		k := keyOf(o)
		var reader client.Reader = r.Client
		if k.kind == "Secret" && user[k.name] {
			reader = r.apiReader()
		}
		switch err := reader.Get(ctx, client.ObjectKeyFromObject(o), o); {
		case err == nil:
			obs.objects[k] = o
		case !apierrors.IsNotFound(err):
			return nil, fmt.Errorf("get %s %s: %w", k.kind, k.name, err)
		}
	}
	if mayRestore(kv, obs.statefulSet(n) != nil) {
		b, err := r.observeBootstrap(ctx, kv)
		if err != nil {
			return nil, err
		}
		obs.bootstrap = b
	}
	if a := obs.access(kv, n); r.Cluster != nil && a.Token != "" && len(a.CABundle) > 0 {
		if v, err := r.Cluster.Status(ctx, kv, a); err == nil {
			obs.view = &v
		}
		// No leader through the client Service (whose endpoints are the
		// ready pods only): ask each pod, to tell a lost quorum from an
		// election.
		if sts := obs.statefulSet(n); sts != nil && sts.Spec.Replicas != nil && *sts.Spec.Replicas > 1 && (obs.view == nil || obs.view.LeaderID == "") {
			obs.probed, obs.pods = true, r.probePods(ctx, kv, a, *sts.Spec.Replicas)
		}
	}
	return obs, nil
}

// installed reports whether the cluster serves gvk (its CRD is installed).
// A "not installed" answer is remembered for notInstalledTTL: each miss
// costs a discovery request, made under the RESTMapper's lock.
func (r *Reconciler) installed(gvk schema.GroupVersionKind) (bool, error) {
	now := r.now()
	if until, ok := r.missing.Load(gvk); ok && now.Before(until.(time.Time)) {
		return false, nil
	}
	_, err := r.Client.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
	switch {
	case err == nil:
		r.missing.Delete(gvk)
		return true, nil
	case meta.IsNoMatchError(err):
		r.missing.Store(gvk, now.Add(notInstalledTTL))
		return false, nil
	}
	return false, fmt.Errorf("look up %s: %w", gvk.Kind, err)
}

// notInstalledTTL is how long an optional CRD found missing is not looked
// up again.
const notInstalledTTL = time.Minute
