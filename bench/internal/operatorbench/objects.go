package operatorbench

import (
	"cmp"
	"context"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kvv1 "kvstore.dev/kvstore/api/v1"
)

// Kinds the tracker watches, with a constructor of each kind's list.
var trackedKinds = []struct {
	kind string
	list func() client.ObjectList
}{
	{"KVStore", func() client.ObjectList { return &kvv1.KVStoreList{} }},
	{"ConfigMap", func() client.ObjectList { return &corev1.ConfigMapList{} }},
	{"Service", func() client.ObjectList { return &corev1.ServiceList{} }},
	{"Secret", func() client.ObjectList { return &corev1.SecretList{} }},
	{"StatefulSet", func() client.ObjectList { return &appsv1.StatefulSetList{} }},
	{"PodDisruptionBudget", func() client.ObjectList { return &policyv1.PodDisruptionBudgetList{} }},
	{"Ingress", func() client.ObjectList { return &networkingv1.IngressList{} }},
}

// Children are the objects the operator makes for a KVStore, as name
// suffixes by kind. They are not listed here but learnt from what the
// operator made for the warm-up KVStore (Tracker.Owned), so they cannot
// drift from the operator's builders.
type Children []Ref

// ChildrenOf is owned, the children of KVStore ns/owner, as Children.
func ChildrenOf(owned []Ref, owner string) Children {
	c := make(Children, len(owned))
	for i, r := range owned {
		c[i] = Ref{r.Kind, "", strings.TrimPrefix(r.Name, owner)}
	}
	return c
}

// Of names the children of KVStore ns/name.
func (c Children) Of(ns, name string) []Ref {
	refs := make([]Ref, len(c))
	for i, r := range c {
		refs[i] = Ref{r.Kind, ns, name + r.Name}
	}
	return refs
}

// String lists the children for the report: "ConfigMap `-config`, ...".
func (c Children) String() string {
	parts := make([]string, len(c))
	for i, r := range c {
		parts[i] = r.Kind + " `" + cmp.Or(r.Name, "<name>") + "`"
	}
	return strings.Join(parts, ", ")
}

// kinds makes an empty object of each kind, by name.
var kinds = map[string]func() client.Object{
	"ConfigMap":           func() client.Object { return &corev1.ConfigMap{} },
	"Service":             func() client.Object { return &corev1.Service{} },
	"Secret":              func() client.Object { return &corev1.Secret{} },
	"StatefulSet":         func() client.Object { return &appsv1.StatefulSet{} },
	"PodDisruptionBudget": func() client.Object { return &policyv1.PodDisruptionBudget{} },
	"Ingress":             func() client.Object { return &networkingv1.Ingress{} },
	"KVStore":             func() client.Object { return &kvv1.KVStore{} },
}

// kindOf is the kind of a typed object: its Go type's name.
func kindOf(o client.Object) string {
	s := fmt.Sprintf("%T", o)
	return s[strings.LastIndexByte(s, '.')+1:]
}

// fetch reads the objects refs name, uncached.
func fetch(ctx context.Context, c client.Client, refs []Ref) ([]client.Object, error) {
	var out []client.Object
	for _, r := range refs {
		o := kinds[r.Kind]()
		if err := c.Get(ctx, client.ObjectKey{Namespace: r.Namespace, Name: r.Name}, o); err != nil {
			return nil, fmt.Errorf("get %v: %w", r, err)
		}
		out = append(out, o)
	}
	return out, nil
}

// directCopy is o renamed, without the fields the API server sets and
// without owner references (so the operator does not act on it).
func directCopy(o client.Object, name string) client.Object {
	cp := o.DeepCopyObject().(client.Object)
	cp.SetName(name)
	cp.SetResourceVersion("")
	cp.SetUID("")
	cp.SetGeneration(0)
	cp.SetCreationTimestamp(metav1.Time{})
	cp.SetManagedFields(nil)
	cp.SetOwnerReferences(nil)
	switch x := cp.(type) {
	case *corev1.Service:
		if x.Spec.ClusterIP != corev1.ClusterIPNone {
			x.Spec.ClusterIP, x.Spec.ClusterIPs = "", nil
		}
		x.Status = corev1.ServiceStatus{}
	case *appsv1.StatefulSet:
		x.Status = appsv1.StatefulSetStatus{}
	case *policyv1.PodDisruptionBudget:
		x.Status = policyv1.PodDisruptionBudgetStatus{}
	case *networkingv1.Ingress:
		x.Status = networkingv1.IngressStatus{}
	}
	return cp
}

// deleteAll deletes the KVStores in ns, then every object of the tracked
// kinds left there.
func deleteAll(ctx context.Context, c client.Client, ns string) error {
	for _, k := range trackedKinds {
		list := k.list()
		if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
			return err
		}
		items, err := meta.ExtractList(list)
		if err != nil {
			return err
		}
		for _, o := range items {
			if err := client.IgnoreNotFound(c.Delete(ctx, o.(client.Object))); err != nil {
				return err
			}
		}
	}
	return nil
}
