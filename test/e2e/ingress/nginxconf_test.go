package ingress

import (
	"fmt"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// testIngress is an Ingress as the operator makes them: host kv.test with
// TLS from Secret kv-tls, one Prefix path to Service kv port "http".
func testIngress(name, path string, annotations map[string]string, tls bool) networkingv1.Ingress {
	prefix := networkingv1.PathTypePrefix
	ing := networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Annotations: annotations},
		Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{
			Host: "kv.test",
			IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
				Path: path, PathType: &prefix,
				Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
					Name: "kv", Port: networkingv1.ServiceBackendPort{Name: "http"},
				}},
			}}}},
		}}},
	}
	if tls {
		ing.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{"kv.test"}, SecretName: "kv-tls"}}
	}
	return ing
}

func testResolve(ns string, b networkingv1.IngressServiceBackend) (string, error) {
	if ns != "ns" || b.Name != "kv" || b.Port.Name != "http" {
		return "", fmt.Errorf("no Service %s/%s port %q", ns, b.Name, b.Port.Name)
	}
	return "10.0.0.1:8080", nil
}

func TestNginxServers(t *testing.T) {
	opts := nginxOptions{HTTPPort: 8080, HTTPSPort: 8443, CertDir: "/tls"}
	a := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[annotationPrefix+kv[i]] = kv[i+1]
		}
		return m
	}
	tests := map[string]struct {
		ings    []networkingv1.Ingress
		opts    nginxOptions
		want    []string // lines (trimmed) that must appear, in this order
		notWant []string // lines that must not appear
		err     string   // the error must contain it
	}{
		"operator's two Ingresses": {
			ings: []networkingv1.Ingress{
				testIngress("kv", "/", a("proxy-body-size", "262144", "ssl-redirect", "true", "proxy-read-timeout", "60"), true),
				testIngress("kv-watch", "/api/v1/watch", a("proxy-buffering", "off", "proxy-read-timeout", "3600"), true),
			},
			opts: opts,
			want: []string{
				"listen 8080;", "server_name kv.test;",
				"location / {", "return 308 https://$host$request_uri;",
				"location /api/v1/watch/ {", "return 308 https://$host$request_uri;",
				"location = /api/v1/watch {", "return 308 https://$host$request_uri;",
				"listen 8443 ssl;", "server_name kv.test;",
				"ssl_certificate /tls/kv-tls/tls.crt;", "ssl_certificate_key /tls/kv-tls/tls.key;",
				"location / {", "client_max_body_size 262144;", "proxy_read_timeout 60s;", "proxy_pass http://10.0.0.1:8080;",
				"location /api/v1/watch/ {", "proxy_buffering off;", "proxy_read_timeout 3600s;", "proxy_pass http://10.0.0.1:8080;",
				"location = /api/v1/watch {", "proxy_buffering off;", "proxy_read_timeout 3600s;", "proxy_pass http://10.0.0.1:8080;",
			},
		},
		"HTTPS to the backends, verified": {
			ings: []networkingv1.Ingress{testIngress("kv", "/", a("backend-protocol", "HTTPS", "proxy-ssl-verify", "on",
				"proxy-ssl-secret", "ns/kv-pod-tls", "proxy-ssl-name", "kv.ns.svc", "proxy-ssl-server-name", "on"), true)},
			opts: opts,
			want: []string{"proxy_ssl_name kv.ns.svc;", "proxy_ssl_server_name on;", "proxy_ssl_verify on;",
				"proxy_ssl_trusted_certificate /tls/kv-pod-tls/ca.crt;", "proxy_pass https://10.0.0.1:8080;"},
			notWant: []string{"proxy_pass http://"},
		},
		"ssl-redirect false proxies plain HTTP too": {
			ings:    []networkingv1.Ingress{testIngress("kv", "/", a("ssl-redirect", "false"), true)},
			opts:    opts,
			want:    []string{"listen 8080;", "location / {", "proxy_pass http://10.0.0.1:8080;", "listen 8443 ssl;"},
			notWant: []string{"return 308 https://$host$request_uri;"},
		},
		"no TLS: no HTTPS server and no redirect": {
			ings:    []networkingv1.Ingress{testIngress("kv", "/", nil, false)},
			opts:    opts,
			want:    []string{"listen 8080;", "proxy_pass http://10.0.0.1:8080;"},
			notWant: []string{"listen 8443 ssl;", "return 308 https://$host$request_uri;"},
		},
		"force-ssl-redirect without TLS": {
			ings:    []networkingv1.Ingress{testIngress("kv", "/", a("ssl-redirect", "false", "force-ssl-redirect", "true"), false)},
			opts:    opts,
			want:    []string{"listen 8080;", "return 308 https://$host$request_uri;"},
			notWant: []string{"listen 8443 ssl;"},
		},
		"buffering, sizes and timeouts": {
			ings: []networkingv1.Ingress{testIngress("kv", "/", a(
				"proxy-request-buffering", "on", "client-body-buffer-size", "64k",
				"proxy-connect-timeout", "5", "proxy-send-timeout", "60"), true)},
			opts: opts,
			want: []string{"listen 8443 ssl;", "client_body_buffer_size 64k;", "proxy_connect_timeout 5s;",
				"proxy_request_buffering on;", "proxy_send_timeout 60s;"},
		},
		"other ports and certificate directory": {
			ings: []networkingv1.Ingress{testIngress("kv", "/", nil, true)},
			opts: nginxOptions{HTTPPort: 80, HTTPSPort: 443, CertDir: "/c"},
			want: []string{"listen 80;", "listen 443 ssl;", "ssl_certificate /c/kv-tls/tls.crt;"},
		},
		"other annotations are kept apart": {
			ings: []networkingv1.Ingress{testIngress("kv", "/", map[string]string{"example.com/x": "y"}, true)},
			opts: opts,
			want: []string{"location / {"},
		},
		"unknown nginx annotation": {
			ings: []networkingv1.Ingress{testIngress("kv", "/", a("proxy-buffer-size", "8k"), true)},
			err:  "nginx.ingress.kubernetes.io/proxy-buffer-size is not rendered",
		},
		"bad size": {
			ings: []networkingv1.Ingress{testIngress("kv", "/", a("proxy-body-size", "1 MiB"), true)},
			err:  `"1 MiB" is not a valid value`,
		},
		"bad timeout": {
			ings: []networkingv1.Ingress{testIngress("kv", "/", a("proxy-read-timeout", "60s"), true)},
			err:  `"60s" is not a valid value`,
		},
		"unknown backend protocol": {
			ings: []networkingv1.Ingress{testIngress("kv", "/", a("backend-protocol", "GRPCS"), true)},
			err:  `"GRPCS" is not rendered`,
		},
		"proxy-ssl-secret without a namespace": {
			ings: []networkingv1.Ingress{testIngress("kv", "/", a("proxy-ssl-secret", "kv-pod-tls"), true)},
			err:  "is not namespace/name",
		},
		"bad bool": {
			ings: []networkingv1.Ingress{testIngress("kv", "/", a("ssl-redirect", "yes please"), true)},
			err:  "ssl-redirect",
		},
		"unknown backend": {
			ings: func() []networkingv1.Ingress {
				ing := testIngress("kv", "/", nil, true)
				ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Name = "other"
				return []networkingv1.Ingress{ing}
			}(),
			err: "no Service ns/other",
		},
		"same location twice": {
			ings: []networkingv1.Ingress{testIngress("a", "/x", nil, true), testIngress("b", "/x", nil, true)},
			err:  "location /x/ twice",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := nginxServers(tt.ings, testResolve, tt.opts)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q; config:\n%s", err, tt.err, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var lines []string
			for _, l := range strings.Split(got, "\n") {
				lines = append(lines, strings.TrimSpace(l))
			}
			i := 0
			for _, w := range tt.want {
				for i < len(lines) && lines[i] != w {
					i++
				}
				if i == len(lines) {
					t.Fatalf("line %q missing (or out of order) in:\n%s", w, got)
				}
				i++
			}
			for _, nw := range tt.notWant {
				if strings.Contains(got, nw) {
					t.Errorf("unexpected %q in:\n%s", nw, got)
				}
			}
		})
	}
}

// TestNginxConfig checks the file around the servers (nginx itself parses
// it in TestIngress).
func TestNginxConfig(t *testing.T) {
	servers, err := nginxServers([]networkingv1.Ingress{
		testIngress("kv", "/", map[string]string{annotationPrefix + "proxy-body-size": "1m"}, false),
	}, testResolve, nginxOptions{HTTPPort: 18080, HTTPSPort: 18443, CertDir: "/nonexistent"})
	if err != nil {
		t.Fatal(err)
	}
	conf := nginxConfig(servers)
	if !strings.HasPrefix(conf, "worker_processes 1;\n") || !strings.Contains(conf, "\n    server {\n        listen 18080;\n") || !strings.HasSuffix(conf, "    }\n}\n") {
		t.Errorf("nginxConfig:\n%s", conf)
	}
}
