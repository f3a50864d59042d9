package controller

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kvv1 "kvstore.dev/kvstore/api/v1"
)

func TestDesiredNetworkPolicy(t *testing.T) {
	opts := BuildOptions{OperatorNamespace: "kvstore-system", IngressControllerNamespace: "ingress-nginx"}
	cases := map[string]struct {
		edit func(*kvv1.KVStore)
		o    BuildOptions
		// want is the number of peers of the API and metrics rules (0: no rule).
		api, metrics int
	}{
		// The API's peers: the operator's namespace, the backup Jobs' pods, ...
		"default": {o: opts, api: 2, metrics: 1},
		"ingress": {edit: func(k *kvv1.KVStore) { k.Spec.Ingress.Enabled = true }, o: opts, api: 3, metrics: 1},
		"apiFrom": {edit: func(k *kvv1.KVStore) {
			k.Spec.NetworkPolicy.APIFrom = []kvv1.NamespacePeer{{Namespace: "apps"}, {NamespaceSelector: &metav1.LabelSelector{}}}
		}, o: opts, api: 4, metrics: 3},
		"no operator ns": {o: BuildOptions{}, api: 1, metrics: 0},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			kv := &kvv1.KVStore{ObjectMeta: metav1.ObjectMeta{Name: "kv", Namespace: "ns"}}
			if tc.edit != nil {
				tc.edit(kv)
			}
			np := desiredNetworkPolicy(kv, tc.o)
			rules := np.Spec.Ingress
			if len(rules) == 0 || rules[0].Ports[0].Port.IntValue() != peerPort {
				t.Fatalf("first rule is not the peer port: %+v", rules)
			}
			got := map[int]int{}
			for _, r := range rules[1:] {
				got[r.Ports[0].Port.IntValue()] = len(r.From)
			}
			if got[httpPort] != tc.api || got[metricsPort] != tc.metrics {
				t.Errorf("peers of the API and metrics ports %d, %d; want %d, %d", got[httpPort], got[metricsPort], tc.api, tc.metrics)
			}
		})
	}
}
