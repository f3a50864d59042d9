package controller

import (
	"fmt"
	"reflect"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	kvv1 "kvstore.dev/kvstore/api/v1"
)

// TestNetworkPolicyFollowsSpec: the NetworkPolicy exists by default (peer
// port from the KVStore's own pods, API port from its backup Jobs' pods;
// the suite's operator has no namespace, so nothing else until apiFrom), admits apiFrom to the API and metrics
// ports, is deleted by enabled: false and comes back with true.
func TestNetworkPolicyFollowsSpec(t *testing.T) {
	ns := newNamespace(t)
	kv := create(t, sample(t, ns))
	np := &networkingv1.NetworkPolicy{}
	ports := func(p *networkingv1.NetworkPolicy) (out []string) {
		for _, r := range p.Spec.Ingress {
			for _, pt := range r.Ports {
				out = append(out, pt.Port.String())
			}
		}
		return out
	}
	eventually(t, "default NetworkPolicy", func() error {
		if err := get(ns, kv.Name, np); err != nil {
			return err
		}
		if got, want := ports(np), []string{fmt.Sprint(peerPort), fmt.Sprint(httpPort)}; !reflect.DeepEqual(got, want) {
			return fmt.Errorf("ports %v, want %v", got, want)
		}
		return nil
	})
	if from := np.Spec.Ingress[1].From; len(from) != 1 || from[0].PodSelector == nil || !reflect.DeepEqual(from[0].PodSelector.MatchLabels, jobSelectorLabels(kv, "backup")) || from[0].NamespaceSelector != nil {
		t.Errorf("API port from %+v, want the KVStore's backup Jobs' pods", from)
	}
	if got := np.Spec.PolicyTypes; !reflect.DeepEqual(got, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) {
		t.Errorf("policy types %v", got)
	}
	if got, want := np.Spec.PodSelector.MatchLabels, selectorLabels(kv); !reflect.DeepEqual(got, want) {
		t.Errorf("pod selector %v, want %v", got, want)
	}
	if from := np.Spec.Ingress[0].From; len(from) != 1 || from[0].PodSelector == nil || !reflect.DeepEqual(from[0].PodSelector.MatchLabels, selectorLabels(kv)) || from[0].NamespaceSelector != nil {
		t.Errorf("peer port from %+v, want the KVStore's pods", from)
	}

	patch(t, kv, func(k *kvv1.KVStore) { k.Spec.NetworkPolicy.APIFrom = []kvv1.NamespacePeer{{Namespace: ns}} })
	eventually(t, "apiFrom admitted to the API and metrics ports", func() error {
		if err := get(ns, kv.Name, np); err != nil {
			return err
		}
		if got, want := ports(np), []string{fmt.Sprint(peerPort), fmt.Sprint(httpPort), fmt.Sprint(metricsPort)}; !reflect.DeepEqual(got, want) {
			return fmt.Errorf("ports %v, want %v", got, want)
		}
		for _, r := range np.Spec.Ingress[1:] {
			last := r.From[len(r.From)-1] // after the backup Jobs' pods on the API port
			if len(r.From) > 2 || last.NamespaceSelector == nil || last.NamespaceSelector.MatchLabels[namespaceNameLabel] != ns {
				return fmt.Errorf("rule %+v does not admit namespace %s", r, ns)
			}
		}
		return nil
	})

	patch(t, kv, func(k *kvv1.KVStore) { k.Spec.NetworkPolicy.Enabled = ptr(false) })
	eventually(t, "NetworkPolicy deleted", func() error {
		switch err := get(ns, kv.Name, &networkingv1.NetworkPolicy{}); {
		case apierrors.IsNotFound(err):
			return nil
		case err != nil:
			return err
		}
		return fmt.Errorf("still there")
	})

	patch(t, kv, func(k *kvv1.KVStore) { k.Spec.NetworkPolicy.Enabled = ptr(true) })
	eventually(t, "NetworkPolicy back", func() error { return get(ns, kv.Name, &networkingv1.NetworkPolicy{}) })
}
