package controller

import (
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	k8slabels "k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ManagedByLabel is the label every object the operator writes carries,
// with the value FieldOwner. The manager's cache holds only the Secrets and
// ConfigMaps with it, not every Secret of the cluster.
const ManagedByLabel = "app.kubernetes.io/managed-by"

// UserSecretRecheck is how often a KVStore whose spec names a user Secret
// (spec.tls.secretName, spec.auth.secretName) is reconciled again: such
// Secrets are not in the cache, so no watch reports their changes; the
// reconcile reads them through the API reader.
const UserSecretRecheck = time.Minute

// CacheOptions are the manager's cache options: Secrets and ConfigMaps
// only with ManagedByLabel=FieldOwner (the operator's own), and, when
// namespaces are given, only those namespaces (a namespaced install, whose
// Role grants nothing elsewhere).
func CacheOptions(namespaces ...string) cache.Options {
	ours := cache.ByObject{Label: k8slabels.SelectorFromSet(k8slabels.Set{ManagedByLabel: FieldOwner})}
	o := cache.Options{ByObject: map[client.Object]cache.ByObject{
		&corev1.Secret{}:    ours,
		&corev1.ConfigMap{}: ours,
		&batchv1.Job{}:      ours,
	}}
	if len(namespaces) > 0 {
		o.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range namespaces {
			o.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	return o
}

// ClientOptions are the manager's client options: reads of unstructured
// objects (ServiceMonitors, Certificates) go through the cache too, so the
// operator needs list and watch on them, not get.
func ClientOptions() client.Options {
	return client.Options{Cache: &client.CacheOptions{Unstructured: true}}
}
