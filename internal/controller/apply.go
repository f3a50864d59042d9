package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	networkingv1ac "k8s.io/client-go/applyconfigurations/networking/v1"
	policyv1ac "k8s.io/client-go/applyconfigurations/policy/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	kvv1 "kvstore.dev/kvstore/api/v1"
)

// namedAC is an apply configuration that knows its name (every typed
// client-go apply configuration does).
type namedAC interface {
	runtime.ApplyConfiguration
	GetName() *string
}

// apply server-side applies desired unless the fields the operator owns in
// the live object (read from the cache into live) already hold exactly the
// desired values. So an unchanged KVStore causes no writes, while a field
// someone else changed (which moves its ownership away from us) or a
// deleted object is put back. A live object controlled by something else is
// never taken over.
func (rc *run) apply(ctx context.Context, live client.Object, desired namedAC, extract func(client.Object) (any, error)) error {
	name := *desired.GetName()
	kind := kindOf(live)
	err := rc.r.Client.Get(ctx, types.NamespacedName{Namespace: rc.names.namespace, Name: name}, live)
	exists := err == nil
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("get %s %s: %w", kind, name, err)
	case !metav1IsControlledBy(live, rc.kv):
		return &problem{"ChildConflict", fmt.Sprintf("%s %s exists and is not controlled by this KVStore; delete or rename it", kind, name)}
	default:
		owned, err := extract(live)
		if err != nil {
			return fmt.Errorf("extract our fields of %s %s: %w", kind, name, err)
		}
		if sameJSON(owned, desired) {
			return nil
		}
		logf.FromContext(ctx).V(1).Info("fields differ from the desired state; applying", "kind", kind, "name", name)
	}
	if err := rc.r.Client.Apply(ctx, desired, client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply %s %s: %w", kind, name, err)
	}
	verb := "Created"
	if exists {
		verb = "Updated"
	}
	rc.r.Recorder.Eventf(rc.kv, nil, corev1.EventTypeNormal, verb, "Apply", "%s %s %s", verb, kind, name)
	return nil
}

// deleteOwned deletes the object named name if this KVStore controls it.
func (rc *run) deleteOwned(ctx context.Context, live client.Object, name string) error {
	kind := kindOf(live)
	err := rc.r.Client.Get(ctx, types.NamespacedName{Namespace: rc.names.namespace, Name: name}, live)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get %s %s: %w", kind, name, err)
	}
	if !metav1IsControlledBy(live, rc.kv) {
		return nil
	}
	if err := rc.r.Client.Delete(ctx, live, client.Preconditions{UID: ptr(live.GetUID())}); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("delete %s %s: %w", kind, name, err)
	}
	rc.r.Recorder.Eventf(rc.kv, nil, corev1.EventTypeNormal, "Deleted", "Delete", "Deleted %s %s", kind, name)
	return nil
}

func ptr[T any](v T) *T { return &v }

// kindOf is the kind of a typed object for messages: "Secret", not
// "*v1.Secret".
func kindOf(o client.Object) string {
	k := fmt.Sprintf("%T", o)
	return k[strings.LastIndex(k, ".")+1:]
}

// sameJSON reports whether a and b serialize to the same JSON (maps are
// serialized with sorted keys, so this is a semantic comparison).
func sameJSON(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

func metav1IsControlledBy(o metav1.Object, kv *kvv1.KVStore) bool {
	ref := metav1.GetControllerOf(o)
	return ref != nil && ref.UID == kv.UID
}

// The extract functions return the fields FieldOwner manages in a live
// object, as an apply configuration comparable with the desired one.
func extractConfigMap(o client.Object) (any, error) {
	return corev1ac.ExtractConfigMap(o.(*corev1.ConfigMap), FieldOwner)
}

func extractService(o client.Object) (any, error) {
	return corev1ac.ExtractService(o.(*corev1.Service), FieldOwner)
}

func extractSecret(o client.Object) (any, error) {
	return corev1ac.ExtractSecret(o.(*corev1.Secret), FieldOwner)
}

// extractStatefulSet drops the status of the claim templates: the list is
// atomic, so our manager owns the "phase: Pending" the API server defaults
// into it, although no one sets a template's status.
func extractStatefulSet(o client.Object) (any, error) {
	ac, err := appsv1ac.ExtractStatefulSet(o.(*appsv1.StatefulSet), FieldOwner)
	if err != nil || ac.Spec == nil {
		return ac, err
	}
	for i := range ac.Spec.VolumeClaimTemplates {
		ac.Spec.VolumeClaimTemplates[i].Status = nil
	}
	return ac, nil
}

func extractPDB(o client.Object) (any, error) {
	return policyv1ac.ExtractPodDisruptionBudget(o.(*policyv1.PodDisruptionBudget), FieldOwner)
}

func extractIngress(o client.Object) (any, error) {
	return networkingv1ac.ExtractIngress(o.(*networkingv1.Ingress), FieldOwner)
}
