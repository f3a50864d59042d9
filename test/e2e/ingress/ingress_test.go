//go:build kube

package ingress

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"kvstore.dev/kvstore/internal/certs"
	"kvstore.dev/kvstore/test/e2e/console"
	"kvstore.dev/kvstore/test/harness"
	"kvstore.dev/kvstore/test/harness/kube"
)

func TestMain(m *testing.M) { kube.Main(m) }

const (
	storeName = "kv"
	host      = "kv.ingress-e2e.test"
	// bodyLimit is the store's maxValueBytes, and so the Ingresses'
	// proxy-body-size: not nginx's default of 1m, so that a config without
	// the annotation would let a body over it through.
	bodyLimit = 256 << 10

	traefikNamespace = "traefik" // hack/kube/ingress.yaml
	traefikService   = "traefik"

	nginxImage = "kvstore-local/nginx:bookworm" // hack/images.sh
	// nginxCertDir is where the nginx pod mounts the TLS Secret; it serves
	// the Ingresses on 8080 (HTTP) and 8443 (HTTPS).
	nginxCertDir = "/etc/nginx/tls"
)

// TestIngress runs one KVStore with spec.ingress.enabled in a namespace of
// its own and checks its Ingresses as served by Traefik (the Ingress
// controller of hack/kube), from a client pod through the client Service,
// and as nginx serves them (the annotations Traefik ignores).
func TestIngress(t *testing.T) {
	k := kube.Up(t)
	k.InstallOperator(t)
	t.Cleanup(func() {
		if t.Failed() {
			k.Dump(t, traefikNamespace)
		}
	})
	ns := k.Namespace(t, "ingress-e2e")
	s := k.KVStore(t, ns, storeName, 3, fmt.Sprintf("config:\n  maxValueBytes: %d\ningress:\n  enabled: true\n  host: %s\n", bodyLimit, host))

	ings := ingresses(t, k, s)
	secretName := ings[0].Spec.TLS[0].SecretName
	var secret corev1.Secret
	if err := k.Client(t).Get(context.Background(), client.ObjectKey{Namespace: ns, Name: secretName}, &secret); err != nil {
		t.Fatalf("the Ingresses' TLS Secret: %v", err)
	}
	caPEM, certPEM := secret.Data["ca.crt"], secret.Data["tls.crt"]
	if len(caPEM) == 0 || len(certPEM) == 0 {
		t.Fatalf("Secret %s has no ca.crt or tls.crt (keys: %v)", secretName, keys(secret.Data))
	}

	// The pods start while Traefik is tested.
	startNginx(t, k, s, ings)
	startClientPod(t, k, s)

	t.Run("traefik", func(t *testing.T) {
		addr := traefikAddr(t, k, s, ings)
		hc := dialTo(t, addr, caPEM)
		c := apiClient("https://"+host, s.Token, hc)
		kube.Eventually(t, "GET /readyz through Traefik", 2*time.Minute, func() error {
			if r := c.Do("GET", "/readyz", nil); r.Status != 200 {
				return fmt.Errorf("%v %s", r, r.Body)
			}
			return nil
		})

		t.Run("kv writes and linearizable reads over https", func(t *testing.T) {
			checkKV(t, c, "e2e/ingress/traefik/", 20)
		})
		t.Run("http redirects to https", func(t *testing.T) {
			checkRedirect(t, hc, "http://"+host, host, "/api/v1/kv/e2e/x?consistency=stale", 301)
		})
		t.Run("watch delivers an event", func(t *testing.T) {
			if seen, err := watchEvent(c, c, "e2e/ingress/traefik-watch", 15*time.Second); err != nil {
				t.Fatalf("%v; the stream showed %q", err, seen)
			}
		})
		t.Run("proxy-body-size is not applied", func(t *testing.T) {
			// Traefik ignores the annotation: the server refuses the value.
			r := c.Put("e2e/ingress/traefik-big", bytes.Repeat([]byte("x"), bodyLimit+1))
			if r.Status != 413 || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/problem+json") {
				t.Fatalf("PUT of %d bytes: %v %s %q; want the server's 413 problem (Traefik applying proxy-body-size now? docs/e2e.md says it does not)", bodyLimit+1, r, r.Header.Get("Content-Type"), r.Body)
			}
		})
		t.Run("console in a browser", func(t *testing.T) {
			chromium := console.RequireChromium(t)
			cert, err := certs.ParseCert(certPEM)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			err = console.Run(ctx, t, "https://"+host, s.Token, console.Options{
				ChromiumPath:      chromium,
				HostResolverRules: "MAP " + host + " " + addr,
				TrustedSPKIHashes: []string{console.SPKIHash(cert)},
				HTTPClient:        hc,
				Name:              "ingress-traefik",
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	})

	t.Run("client pod through the client Service", func(t *testing.T) {
		if out := waitClientPod(t, k, ns); strings.TrimSpace(out) != "" {
			t.Logf("the client pod said: %s", out)
		}
	})

	t.Run("nginx", func(t *testing.T) {
		ip := waitNginx(t, k, ns)
		hc := dialTo(t, ip, caPEM)
		c := apiClient("https://"+host+":8443", s.Token, hc)

		t.Run("kv writes and linearizable reads over https", func(t *testing.T) {
			checkKV(t, c, "e2e/ingress/nginx/", 5)
		})
		t.Run("http redirects to https", func(t *testing.T) {
			checkRedirect(t, hc, "http://"+host+":8080", host, "/api/v1/kv/e2e/x?consistency=stale", 308)
		})
		t.Run("body over proxy-body-size is refused by nginx", func(t *testing.T) {
			r := c.Put("e2e/ingress/nginx-big", bytes.Repeat([]byte("x"), bodyLimit+1))
			if r.Status != 413 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
				t.Fatalf("PUT of %d bytes: %v %s %q; want nginx's own 413 (text/html), not the server's", bodyLimit+1, r, r.Header.Get("Content-Type"), r.Body)
			}
		})
		t.Run("body at proxy-body-size passes", func(t *testing.T) {
			value := bytes.Repeat([]byte("y"), bodyLimit)
			if r := c.Put("e2e/ingress/nginx-limit", value); !r.OK() {
				t.Fatalf("PUT of %d bytes: %v %q", len(value), r, r.Body)
			}
			if r := c.Get("e2e/ingress/nginx-limit", "linearizable"); !r.OK() || !bytes.Equal(r.Body, value) {
				t.Fatalf("GET: %v, %d bytes", r, len(r.Body))
			}
		})
		t.Run("watch streams", func(t *testing.T) {
			if seen, err := watchEvent(c, c, "e2e/ingress/nginx-watch", 15*time.Second); err != nil {
				t.Fatalf("%v; the stream showed %q", err, seen)
			}
		})
	})
}

// ingresses waits until the operator made the store's two Ingresses and
// returns them, the one for / first.
func ingresses(t *testing.T, k *kube.Cluster, s *kube.Store) []networkingv1.Ingress {
	t.Helper()
	var out []networkingv1.Ingress
	kube.Eventually(t, "the KVStore's Ingresses", time.Minute, func() error {
		out = out[:0]
		for _, name := range []string{s.Name, s.Name + "-watch"} {
			var ing networkingv1.Ingress
			if err := k.Client(t).Get(context.Background(), client.ObjectKey{Namespace: s.Namespace, Name: name}, &ing); err != nil {
				return err
			}
			if len(ing.Spec.TLS) == 0 || ing.Spec.TLS[0].SecretName == "" {
				return fmt.Errorf("Ingress %s has no TLS Secret", name)
			}
			out = append(out, ing)
		}
		return nil
	})
	return out
}

// traefikAddr is the ClusterIP of Traefik's Service, once Traefik has
// published it in the status of both Ingresses (it serves them).
func traefikAddr(t *testing.T, k *kube.Cluster, s *kube.Store, ings []networkingv1.Ingress) string {
	t.Helper()
	var svc corev1.Service
	if err := k.Client(t).Get(context.Background(), client.ObjectKey{Namespace: traefikNamespace, Name: traefikService}, &svc); err != nil {
		t.Fatalf("Traefik's Service (hack/kube/ingress.yaml, applied by hack/kube/up.sh): %v", err)
	}
	ip := svc.Spec.ClusterIP
	kube.Eventually(t, "Traefik publishing "+ip+" in the Ingresses' status", 2*time.Minute, func() error {
		for _, want := range ings {
			var ing networkingv1.Ingress
			if err := k.Client(t).Get(context.Background(), client.ObjectKey{Namespace: s.Namespace, Name: want.Name}, &ing); err != nil {
				return err
			}
			lb := ing.Status.LoadBalancer.Ingress
			if len(lb) != 1 || lb[0].IP != ip {
				return fmt.Errorf("Ingress %s: status %+v", ing.Name, lb)
			}
		}
		return nil
	})
	return ip
}

// restricted is the container security context the restricted Pod
// Security Standard asks for.
const restricted = `
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        capabilities: {drop: [ALL]}`

// startClientPod runs a busybox pod that writes e2e/ingress/pod through the
// client Service's DNS name (busybox's wget cannot PUT: nc sends it; a 503
// or 504 is retried) and reads it back with a linearizable read, printing
// each PUT's status line and the value.
func startClientPod(t *testing.T, k *kube.Cluster, s *kube.Store) {
	t.Helper()
	st := s.Get(t).Status
	// The server image's own client: /healthz, then a key written, read
	// back, deleted and gone, over HTTPS verified with the pods' CA, with
	// the admin token from a mounted file.
	k.Apply(t, s.Namespace, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: client
spec:
  restartPolicy: Never
  securityContext:
    runAsNonRoot: true
    runAsUser: 65532
    runAsGroup: 65532
    seccompProfile: {type: RuntimeDefault}
  containers:
    - name: client
      image: docker.io/%s
      imagePullPolicy: Never
      args: [healthcheck, --url, "https://%s.%s.svc:8080/healthz", --ca-file, /etc/kvstore-tls/ca.crt, --put-get, --token-file, /etc/kvstore-auth/token, --timeout, 60s]
      volumeMounts:
        - {name: pod-tls, mountPath: /etc/kvstore-tls, readOnly: true}
        - {name: auth, mountPath: /etc/kvstore-auth, readOnly: true}
      securityContext:%s
  volumes:
    - name: pod-tls
      secret: {secretName: %s-pod-tls, items: [{key: ca.crt, path: ca.crt}]}
    - name: auth
      secret: {secretName: %s, items: [{key: token, path: token}]}
`, kube.ServerImage, s.Name, s.Namespace, restricted, s.Name, st.AuthSecretName))
}

// waitClientPod waits for the client pod to end and returns its output.
func waitClientPod(t *testing.T, k *kube.Cluster, ns string) string {
	t.Helper()
	var pod corev1.Pod
	kube.Eventually(t, "the client pod to end", 3*time.Minute, func() error {
		if err := k.Client(t).Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "client"}, &pod); err != nil {
			return err
		}
		if p := pod.Status.Phase; p != corev1.PodSucceeded && p != corev1.PodFailed {
			return fmt.Errorf("pod client: %s", kube.PodState(&pod))
		}
		return nil
	})
	out := k.Kubectl(t, "-n", ns, "logs", "client")
	if pod.Status.Phase != corev1.PodSucceeded {
		t.Fatalf("the client pod failed (%s); its output:\n%s", kube.PodState(&pod), out)
	}
	return out
}

// startNginx imports the compose nginx image into the cluster and runs it
// as a pod with the config rendered from ings (backends resolved to the
// Services' ClusterIPs).
func startNginx(t *testing.T, k *kube.Cluster, s *kube.Store, ings []networkingv1.Ingress) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	load := exec.CommandContext(ctx, "bash", filepath.Join(harness.Root(), "hack", "kube", "load-images.sh"), nginxImage)
	if out, err := load.CombinedOutput(); err != nil {
		t.Fatalf("importing %s (hack/images.sh builds it): %v\n%s", nginxImage, err, out)
	}
	resolve := func(ns string, b networkingv1.IngressServiceBackend) (string, error) {
		var svc corev1.Service
		if err := k.Client(t).Get(context.Background(), client.ObjectKey{Namespace: ns, Name: b.Name}, &svc); err != nil {
			return "", err
		}
		for _, p := range svc.Spec.Ports {
			if (b.Port.Name != "" && p.Name == b.Port.Name) || (b.Port.Name == "" && p.Port == b.Port.Number) {
				return fmt.Sprintf("%s:%d", svc.Spec.ClusterIP, p.Port), nil
			}
		}
		return "", fmt.Errorf("Service %s/%s has no port %+v", ns, b.Name, b.Port)
	}
	servers, err := nginxServers(ings, resolve, nginxOptions{HTTPPort: 8080, HTTPSPort: 8443, CertDir: nginxCertDir})
	if err != nil {
		t.Fatal(err)
	}
	conf := nginxConfig(servers)
	t.Logf("nginx.conf rendered from the Ingresses:\n%s", conf)
	secret := ings[0].Spec.TLS[0].SecretName
	// The Secret whose ca.crt verifies the pods (proxy-ssl-secret), mounted
	// next to the edge certificate's.
	_, podCA, ok := strings.Cut(ings[0].Annotations["nginx.ingress.kubernetes.io/proxy-ssl-secret"], "/")
	if !ok {
		t.Fatalf("Ingress %s has no proxy-ssl-secret: the pods serve HTTPS by default, verified with their CA", ings[0].Name)
	}
	k.Apply(t, s.Namespace, fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata:
  name: nginx
data:
  nginx.conf: %q
---
apiVersion: v1
kind: Pod
metadata:
  name: nginx
spec:
  securityContext:
    runAsNonRoot: true
    runAsUser: 101
    runAsGroup: 101
    seccompProfile: {type: RuntimeDefault}
  containers:
    - name: nginx
      image: docker.io/%s
      imagePullPolicy: Never
      command: [/usr/sbin/nginx, -c, /etc/nginx/e2e/nginx.conf, -g, "daemon off;"]
      ports: [{containerPort: 8080}, {containerPort: 8443}]
      readinessProbe:
        tcpSocket: {port: 8443}
        periodSeconds: 1
      securityContext:%s
      volumeMounts:
        - {name: conf, mountPath: /etc/nginx/e2e, readOnly: true}
        - {name: tls, mountPath: %s/%s, readOnly: true}
        - {name: pod-ca, mountPath: %s/%s, readOnly: true}
        - {name: tmp, mountPath: /tmp}
  volumes:
    - name: conf
      configMap: {name: nginx}
    - name: tls
      secret: {secretName: %s, defaultMode: 0444}
    - name: pod-ca
      secret: {secretName: %s, defaultMode: 0444, items: [{key: ca.crt, path: ca.crt}]}
    - name: tmp
      emptyDir: {sizeLimit: 64Mi}
`, conf, nginxImage, restricted, nginxCertDir, secret, nginxCertDir, podCA, secret, podCA))
}

// waitNginx waits for the nginx pod to be Ready and returns its IP.
func waitNginx(t *testing.T, k *kube.Cluster, ns string) string {
	t.Helper()
	var pod corev1.Pod
	kube.Eventually(t, "the nginx pod to be Ready", 3*time.Minute, func() error {
		if err := k.Client(t).Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "nginx"}, &pod); err != nil {
			return err
		}
		if pod.Status.Phase == corev1.PodFailed || kube.Restarts(&pod) > 0 {
			return fmt.Errorf("nginx pod: %s", kube.PodState(&pod)) // the dump has its log
		}
		if !kube.PodReady(&pod) || pod.Status.PodIP == "" {
			return fmt.Errorf("nginx pod: %s", kube.PodState(&pod))
		}
		return nil
	})
	return pod.Status.PodIP
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
