package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	kvv1 "kvstore.dev/kvstore/api/v1"
)

// child is one object of a plan: its desired state and the comparison of
// its kind.
type child struct {
	key objKey
	// desired is what is applied; nil deletes the object (when this KVStore
	// controls it).
	desired runtime.ApplyConfiguration
	// same reports whether the fields FieldOwner manages in live, the
	// observed object, already hold the desired values.
	same func(live client.Object) (bool, error)
	// event is recorded once the object was written, beside Created or
	// Updated.
	event *event
}

// event is a Normal event of a KVStore.
type event struct{ reason, action, note string }

func (c child) withEvent(e *event) child { c.event = e; return c }

// namedAC is an apply configuration that knows its name (every typed
// client-go apply configuration does).
type namedAC interface {
	runtime.ApplyConfiguration
	GetName() *string
}

// typedChild is a child of a kind with client-go apply configurations: the
// fields FieldOwner manages are extracted from the observed object and
// compared, as JSON, with desired.
func typedChild[T client.Object, AC namedAC](desired AC, extract func(T, string) (AC, error)) child {
	var zero T
	return child{key: objKey{kindOf(zero), *desired.GetName()}, desired: desired,
		same: func(live client.Object) (bool, error) {
			owned, err := extract(live.(T), FieldOwner)
			return err == nil && sameJSON(owned, desired), err
		}}
}

// looseChild is a child of another project's kind (no typed apply
// configuration): the observed object is left alone when its spec and
// labels already contain every desired field with the desired value.
func looseChild(desired *unstructured.Unstructured) child {
	return child{key: keyOf(desired), desired: client.ApplyConfigurationFromUnstructured(desired),
		same: func(live client.Object) (bool, error) {
			l := live.(*unstructured.Unstructured).Object
			return contains(l["spec"], desired.Object["spec"]) &&
				contains(l["metadata"].(map[string]any)["labels"], desired.Object["metadata"].(map[string]any)["labels"]), nil
		}}
}

// act carries out p on what obs saw: every child in order, stopping at the
// first error, then p's membership step (only when every child went
// through). It reports whether it wrote the StatefulSet.
func (r *Reconciler) act(ctx context.Context, kv *kvv1.KVStore, obs *observed, p plan) (stsWritten bool, err error) {
	for _, c := range p.children {
		live := obs.objects[c.key]
		wrote := false
		if c.desired == nil {
			err = r.deleteOwned(ctx, kv, live)
		} else {
			wrote, err = r.apply(ctx, kv, live, c)
		}
		if err != nil {
			return stsWritten, err
		}
		stsWritten = stsWritten || wrote && c.key.kind == "StatefulSet"
	}
	if p.bootstrap != nil {
		if err := r.actBootstrap(ctx, kv, p.bootstrap); err != nil {
			return stsWritten, err
		}
	}
	a := obs.access(kv, namesFor(kv))
	if p.recovery != nil {
		called, hold := r.recovery(ctx, kv, a, *p.recovery)
		if called || hold {
			// The reconcile's one call to the servers was the recovery's,
			// or membership waits for the recovery (Reconciler.recovery).
			return stsWritten, nil
		}
	}
	if p.step != nil {
		r.membership(ctx, kv, a, *p.step)
	}
	return stsWritten, nil
}

// apply server-side applies c unless live (nil when absent) is
// c.same: so an unchanged KVStore causes no writes, while a field someone
// else changed (which moves its ownership away from us) or a deleted object
// is put back. A live object controlled by something else is never taken
// over. It reports whether it wrote.
func (r *Reconciler) apply(ctx context.Context, kv *kvv1.KVStore, live client.Object, c child) (bool, error) {
	k := c.key
	if live != nil {
		if !metav1IsControlledBy(live, kv) {
			return false, &problem{"ChildConflict", fmt.Sprintf("%s %s exists and is not controlled by this KVStore; delete or rename it", k.kind, k.name)}
		}
		same, err := c.same(live)
		if err != nil {
			return false, fmt.Errorf("extract our fields of %s %s: %w", k.kind, k.name, err)
		}
		if same {
			return false, nil
		}
		logf.FromContext(ctx).V(1).Info("fields differ from the desired state; applying", "kind", k.kind, "name", k.name)
	}
	if err := r.Client.Apply(ctx, c.desired, client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
		return false, fmt.Errorf("apply %s %s: %w", k.kind, k.name, err)
	}
	verb := "Created"
	if live != nil {
		verb = "Updated"
	}
	r.Recorder.Eventf(kv, nil, corev1.EventTypeNormal, verb, "Apply", "%s %s %s", verb, k.kind, k.name)
	if e := c.event; e != nil {
		r.Recorder.Eventf(kv, nil, corev1.EventTypeNormal, e.reason, e.action, "%s", e.note)
	}
	return true, nil
}

// deleteOwned deletes live (nil when absent) if this KVStore controls it.
func (r *Reconciler) deleteOwned(ctx context.Context, kv *kvv1.KVStore, live client.Object) error {
	if live == nil || !metav1IsControlledBy(live, kv) {
		return nil
	}
	k := keyOf(live)
	if err := r.Client.Delete(ctx, live, client.Preconditions{UID: ptr(live.GetUID())}); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("delete %s %s: %w", k.kind, k.name, err)
	}
	r.Recorder.Eventf(kv, nil, corev1.EventTypeNormal, "Deleted", "Delete", "Deleted %s %s", k.kind, k.name)
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

// extractStatefulSet drops the status of the claim templates: the list is
// atomic, so our manager owns the "phase: Pending" the API server defaults
// into it, although no one sets a template's status.
func extractStatefulSet(sts *appsv1.StatefulSet, owner string) (*appsv1ac.StatefulSetApplyConfiguration, error) {
	ac, err := appsv1ac.ExtractStatefulSet(sts, owner)
	if err != nil || ac.Spec == nil {
		return ac, err
	}
	for i := range ac.Spec.VolumeClaimTemplates {
		ac.Spec.VolumeClaimTemplates[i].Status = nil
	}
	return ac, nil
}
