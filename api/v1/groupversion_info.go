// Package v1 is the kvstore.dev/v1 API: the KVStore kind that the operator
// (cmd/operator) turns into a StatefulSet of kvstore servers with their
// Services, Secrets and Ingress. It is the only package of this module meant
// to be imported by others.
//
// +kubebuilder:object:generate=true
// +groupName=kvstore.dev
package v1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the API group and version of KVStore.
	GroupVersion = schema.GroupVersion{Group: "kvstore.dev", Version: "v1"}

	// SchemeBuilder registers the kinds of this package with a scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the kinds of this package to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
