package controller

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	kvv1 "kvstore.dev/kvstore/api/v1"
)

// TestServerResources checks the server container's resources and
// GOMEMLIMIT as the StatefulSet carries them: the defaults for an empty
// spec.resources, the user's as a whole otherwise.
func TestServerResources(t *testing.T) {
	q := resource.MustParse
	cases := map[string]struct {
		resources corev1.ResourceRequirements
		requests  corev1.ResourceList
		limits    corev1.ResourceList
		memLimit  string // "": no GOMEMLIMIT
	}{
		"defaults": {corev1.ResourceRequirements{},
			corev1.ResourceList{corev1.ResourceCPU: q("100m"), corev1.ResourceMemory: q("256Mi")},
			corev1.ResourceList{corev1.ResourceMemory: q("1Gi")},
			"966367620"}, // 90% of 1Gi, rounded down to a whole 100th
		"the sample's": {corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: q("100m"), corev1.ResourceMemory: q("128Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: q("512Mi")}},
			corev1.ResourceList{corev1.ResourceCPU: q("100m"), corev1.ResourceMemory: q("128Mi")},
			corev1.ResourceList{corev1.ResourceMemory: q("512Mi")},
			"483183810"},
		"a memory limit alone replaces the defaults": {corev1.ResourceRequirements{
			Limits: corev1.ResourceList{corev1.ResourceMemory: q("2Gi")}},
			nil,
			corev1.ResourceList{corev1.ResourceMemory: q("2Gi")},
			"1932735240"},
		"a decimal limit": {corev1.ResourceRequirements{
			Limits: corev1.ResourceList{corev1.ResourceMemory: q("1G"), corev1.ResourceCPU: q("2")}},
			nil,
			corev1.ResourceList{corev1.ResourceMemory: q("1G"), corev1.ResourceCPU: q("2")},
			"900000000"},
		"requests only: no memory limit, no GOMEMLIMIT": {corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceMemory: q("512Mi")}},
			corev1.ResourceList{corev1.ResourceMemory: q("512Mi")},
			nil,
			""},
		"a CPU limit only: no GOMEMLIMIT": {corev1.ResourceRequirements{
			Limits: corev1.ResourceList{corev1.ResourceCPU: q("1")}},
			nil,
			corev1.ResourceList{corev1.ResourceCPU: q("1")},
			""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			kv := newKV(func(k *kvv1.KVStore) { k.Spec.Resources = tc.resources })
			sts := convertAC[appsv1.StatefulSet](desiredStatefulSet(kv, BuildOptions{}, "hash", 1))
			c := sts.Spec.Template.Spec.Containers[0]
			if !sameResources(c.Resources.Requests, tc.requests) || !sameResources(c.Resources.Limits, tc.limits) {
				t.Errorf("requests %v limits %v, want %v %v", c.Resources.Requests, c.Resources.Limits, tc.requests, tc.limits)
			}
			var got []string
			for _, e := range c.Env {
				if e.Name == "GOMEMLIMIT" {
					got = append(got, e.Value)
				}
			}
			switch {
			case tc.memLimit == "" && len(got) > 0:
				t.Errorf("GOMEMLIMIT %v, want none", got)
			case tc.memLimit != "" && (len(got) != 1 || got[0] != tc.memLimit):
				t.Errorf("GOMEMLIMIT %v, want %s", got, tc.memLimit)
			}
		})
	}
}

func sameResources(a, b corev1.ResourceList) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || v.Cmp(w) != 0 {
			return false
		}
	}
	return true
}
