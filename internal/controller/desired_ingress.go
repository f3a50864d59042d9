package controller

import (
	"encoding/json"
	"fmt"
	"maps"
	"strconv"

	networkingv1 "k8s.io/api/networking/v1"
	networkingv1ac "k8s.io/client-go/applyconfigurations/networking/v1"

	kvv1 "kvstore.dev/kvstore/api/v1"
)

// ingressAnnotations are the ingress-nginx settings the compose nginx has by
// hand (deploy/compose/nginx/nginx.conf): HTTPS only with a redirect, the
// body limit matched to the value limit, and request buffering so a slow
// client does not hold a server connection.
//
// The pods serve HTTPS with the operator's pod certificate: nginx speaks
// HTTPS to them and verifies that certificate against the CA bundle of
// <name>-ca-bundle (ca.crt alone: not <name>-pod-tls, whose peer keys the
// ingress controller must not read, and no client certificate) for the
// client Service's name (unless spec.tls.pods is Disabled).
func ingressAnnotations(kv *kvv1.KVStore) map[string]string {
	a := map[string]string{
		"nginx.ingress.kubernetes.io/ssl-redirect":            "true",
		"nginx.ingress.kubernetes.io/force-ssl-redirect":      "true",
		"nginx.ingress.kubernetes.io/proxy-body-size":         bodySize(kv),
		"nginx.ingress.kubernetes.io/proxy-request-buffering": "on",
		"nginx.ingress.kubernetes.io/client-body-buffer-size": "64k",
		"nginx.ingress.kubernetes.io/proxy-connect-timeout":   "5",
		"nginx.ingress.kubernetes.io/proxy-send-timeout":      "60",
		"nginx.ingress.kubernetes.io/proxy-read-timeout":      "60",
	}
	if podAPITLS(kv) {
		a["nginx.ingress.kubernetes.io/backend-protocol"] = "HTTPS"
		a["nginx.ingress.kubernetes.io/proxy-ssl-verify"] = "on"
		a["nginx.ingress.kubernetes.io/proxy-ssl-secret"] = kv.Namespace + "/" + namesFor(kv).caBundle
		a["nginx.ingress.kubernetes.io/proxy-ssl-name"] = apiServerName(kv)
		a["nginx.ingress.kubernetes.io/proxy-ssl-server-name"] = "on"
	}
	return a
}

// watchAnnotations are those of the /api/v1/watch location in compose:
// server-sent events pass through unbuffered and may stay open for an hour.
func watchAnnotations(kv *kvv1.KVStore) map[string]string {
	a := ingressAnnotations(kv)
	a["nginx.ingress.kubernetes.io/proxy-buffering"] = "off"
	a["nginx.ingress.kubernetes.io/proxy-read-timeout"] = "3600"
	a["nginx.ingress.kubernetes.io/proxy-send-timeout"] = "3600"
	return a
}

// bodySize is the largest request body nginx accepts: the value limit, in
// bytes (as the compose nginx's client_max_body_size).
func bodySize(kv *kvv1.KVStore) string {
	return strconv.FormatInt(maxValueBytes(kv), 10)
}

// desiredIngresses are the Ingress <name> routing / to the client Service and
// the Ingress <name>-watch routing /api/v1/watch with SSE settings
// (ingress-nginx annotations apply per Ingress, so the two locations of the
// compose nginx become two Ingresses on the same host). Both terminate TLS
// with the TLS Secret. User annotations override the operator's.
func desiredIngresses(kv *kvv1.KVStore) []*networkingv1ac.IngressApplyConfiguration {
	n := namesFor(kv)
	class := kv.Spec.Ingress.ClassName
	if class == "" {
		class = "nginx"
	}
	build := func(name, path string, annotations map[string]string) *networkingv1ac.IngressApplyConfiguration {
		maps.Copy(annotations, kv.Spec.Ingress.Annotations)
		return networkingv1ac.Ingress(name, n.namespace).
			WithLabels(labels(kv, "ingress")).
			WithAnnotations(annotations).
			WithOwnerReferences(ownerRef(kv)).
			WithSpec(networkingv1ac.IngressSpec().
				WithIngressClassName(class).
				WithTLS(networkingv1ac.IngressTLS().WithHosts(kv.Spec.Ingress.Host).WithSecretName(n.tls)).
				WithRules(networkingv1ac.IngressRule().
					WithHost(kv.Spec.Ingress.Host).
					WithHTTP(networkingv1ac.HTTPIngressRuleValue().WithPaths(
						networkingv1ac.HTTPIngressPath().
							WithPath(path).
							WithPathType(networkingv1.PathTypePrefix).
							WithBackend(networkingv1ac.IngressBackend().WithService(
								networkingv1ac.IngressServiceBackend().
									WithName(n.kv).
									WithPort(networkingv1ac.ServiceBackendPort().WithName("http"))))))))
	}
	return []*networkingv1ac.IngressApplyConfiguration{
		build(n.kv, "/", ingressAnnotations(kv)),
		build(n.watch, "/api/v1/watch", watchAnnotations(kv)),
	}
}

// convertAC converts a typed API struct to its apply configuration through
// JSON; the two share field names, and zero values the typed struct omits
// stay unset.
func convertAC[AC any, T any](in *T) *AC {
	b, err := json.Marshal(in)
	if err != nil {
		panic(fmt.Sprintf("marshal %T: %v", in, err))
	}
	out := new(AC)
	if err := json.Unmarshal(b, out); err != nil {
		panic(fmt.Sprintf("convert %T to %T: %v", in, out, err))
	}
	return out
}
