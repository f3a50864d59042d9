package controller

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	networkingv1ac "k8s.io/client-go/applyconfigurations/networking/v1"

	kvv1 "kvstore.dev/kvstore/api/v1"
)

// namespaceNameLabel is the label the API server sets on every namespace to
// its name, so a namespace selector can pick one namespace by name.
const namespaceNameLabel = "kubernetes.io/metadata.name"

// networkPolicyEnabled is spec.networkPolicy.enabled with its default
// (true).
func networkPolicyEnabled(kv *kvv1.KVStore) bool {
	e := kv.Spec.NetworkPolicy.Enabled
	return e == nil || *e
}

// ingressControllerNamespace is the namespace admitted to the API port for
// the ingress controller: spec.ingress.controllerNamespace, else the
// operator's default.
func ingressControllerNamespace(kv *kvv1.KVStore, o BuildOptions) string {
	if ns := kv.Spec.Ingress.ControllerNamespace; ns != "" {
		return ns
	}
	return o.IngressControllerNamespace
}

// desiredNetworkPolicy is the NetworkPolicy <name> on kv's server pods
// (selected as the StatefulSet selects them), for ingress only:
//
//   - the peer port from the pods of this KVStore;
//   - the API port from the operator's namespace (membership changes),
//     the pods of kv's backup Jobs (a persistentVolumeClaim destination),
//     the ingress controller's namespace when spec.ingress.enabled, and the
//     namespaces of spec.networkPolicy.apiFrom;
//   - the metrics port from the operator's namespace and those of apiFrom.
//
// Pods of kv's namespace are not admitted to the API unless apiFrom lists
// the namespace (kv's backup Jobs' pods excepted). A port without any peer
// admits nothing.
func desiredNetworkPolicy(kv *kvv1.KVStore, o BuildOptions) *networkingv1ac.NetworkPolicyApplyConfiguration {
	n := namesFor(kv)
	port := func(p int) *networkingv1ac.NetworkPolicyPortApplyConfiguration {
		return networkingv1ac.NetworkPolicyPort().WithProtocol(corev1.ProtocolTCP).WithPort(intstr.FromInt(p))
	}
	byName := func(ns string) *networkingv1ac.NetworkPolicyPeerApplyConfiguration {
		return networkingv1ac.NetworkPolicyPeer().WithNamespaceSelector(
			metav1ac.LabelSelector().WithMatchLabels(map[string]string{namespaceNameLabel: ns}))
	}
	var apiFrom []*networkingv1ac.NetworkPolicyPeerApplyConfiguration
	for _, p := range kv.Spec.NetworkPolicy.APIFrom {
		switch {
		case p.Namespace != "":
			apiFrom = append(apiFrom, byName(p.Namespace))
		case p.NamespaceSelector != nil:
			apiFrom = append(apiFrom, networkingv1ac.NetworkPolicyPeer().WithNamespaceSelector(convertAC[metav1ac.LabelSelectorApplyConfiguration](p.NamespaceSelector)))
		}
	}
	var operator []*networkingv1ac.NetworkPolicyPeerApplyConfiguration
	if o.OperatorNamespace != "" {
		operator = append(operator, byName(o.OperatorNamespace))
	}
	api := append([]*networkingv1ac.NetworkPolicyPeerApplyConfiguration{}, operator...)
	api = append(api, networkingv1ac.NetworkPolicyPeer().WithPodSelector(
		metav1ac.LabelSelector().WithMatchLabels(jobSelectorLabels(kv, "backup"))))
	if ns := ingressControllerNamespace(kv, o); kv.Spec.Ingress.Enabled && ns != "" {
		api = append(api, byName(ns))
	}
	api = append(api, apiFrom...)
	metrics := append(append([]*networkingv1ac.NetworkPolicyPeerApplyConfiguration{}, operator...), apiFrom...)

	spec := networkingv1ac.NetworkPolicySpec().
		WithPodSelector(metav1ac.LabelSelector().WithMatchLabels(selectorLabels(kv))).
		WithPolicyTypes(networkingv1.PolicyTypeIngress).
		WithIngress(networkingv1ac.NetworkPolicyIngressRule().
			WithPorts(port(peerPort)).
			WithFrom(networkingv1ac.NetworkPolicyPeer().WithPodSelector(
				metav1ac.LabelSelector().WithMatchLabels(selectorLabels(kv)))))
	// A rule with ports and no peers would admit every source: a port
	// without peers gets no rule (denied).
	if len(api) > 0 {
		spec.WithIngress(networkingv1ac.NetworkPolicyIngressRule().WithPorts(port(httpPort)).WithFrom(api...))
	}
	if len(metrics) > 0 {
		spec.WithIngress(networkingv1ac.NetworkPolicyIngressRule().WithPorts(port(metricsPort)).WithFrom(metrics...))
	}
	return networkingv1ac.NetworkPolicy(n.kv, n.namespace).
		WithLabels(labels(kv, "server")).
		WithOwnerReferences(ownerRef(kv)).
		WithSpec(spec)
}
