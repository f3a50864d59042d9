package controller

import (
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kvv1 "kvstore.dev/kvstore/api/v1"
)

// TestServerPodResources checks that the StatefulSet's server container
// gets the default requests, limit and GOMEMLIMIT when spec.resources is
// empty, and the user's (without GOMEMLIMIT when there is no memory limit)
// once they are set.
func TestServerPodResources(t *testing.T) {
	ns := newNamespace(t)
	kv := create(t, &kvv1.KVStore{ObjectMeta: metav1.ObjectMeta{Name: "res", Namespace: ns}})
	container := func() (corev1.Container, error) {
		sts := &appsv1.StatefulSet{}
		if err := get(ns, "res", sts); err != nil {
			return corev1.Container{}, err
		}
		return sts.Spec.Template.Spec.Containers[0], nil
	}
	goMemLimit := func(c corev1.Container) string {
		for _, e := range c.Env {
			if e.Name == "GOMEMLIMIT" {
				return e.Value
			}
		}
		return ""
	}
	eventually(t, "default resources", func() error {
		c, err := container()
		if err != nil {
			return err
		}
		r := c.Resources
		if r.Requests.Cpu().String() != "100m" || r.Requests.Memory().String() != "256Mi" || r.Limits.Memory().String() != "1Gi" || !r.Limits.Cpu().IsZero() {
			return fmt.Errorf("resources %v, want requests cpu 100m memory 256Mi, limit memory 1Gi, no CPU limit", r)
		}
		if got := goMemLimit(c); got != "966367620" {
			return fmt.Errorf("GOMEMLIMIT %q, want 966367620 (90%% of 1Gi)", got)
		}
		return nil
	})
	patch(t, kv, func(k *kvv1.KVStore) {
		k.Spec.Resources = corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi")}}
	})
	eventually(t, "a memory limit of 2Gi", func() error {
		c, err := container()
		if err != nil {
			return err
		}
		if r := c.Resources; r.Limits.Memory().String() != "2Gi" || len(r.Requests) != 0 {
			return fmt.Errorf("resources %v, want the 2Gi limit alone", r)
		}
		if got := goMemLimit(c); got != "1932735240" {
			return fmt.Errorf("GOMEMLIMIT %q, want 1932735240 (90%% of 2Gi)", got)
		}
		return nil
	})
	patch(t, kv, func(k *kvv1.KVStore) {
		k.Spec.Resources = corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")}}
	})
	eventually(t, "no memory limit", func() error {
		c, err := container()
		if err != nil {
			return err
		}
		if r := c.Resources; len(r.Limits) != 0 || r.Requests.Memory().String() != "512Mi" {
			return fmt.Errorf("resources %v, want requests memory 512Mi alone", r)
		}
		if got := goMemLimit(c); got != "" {
			return fmt.Errorf("GOMEMLIMIT %q without a memory limit", got)
		}
		return nil
	})
}
