// Package ingress tests the Ingresses the operator makes for a KVStore
// (spec.ingress) on the local cluster of hack/kube: served for real by
// Traefik's kubernetesIngressNGINX provider (hack/kube/ingress.yaml), and,
// for the nginx-only annotations Traefik ignores, by the compose nginx image
// with a config rendered from the Ingress objects themselves (nginxServers).
// See docs/e2e.md, "Ingress".
package ingress

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
)

// annotationPrefix starts the ingress-nginx annotations.
const annotationPrefix = "nginx.ingress.kubernetes.io/"

// resolver maps an Ingress backend (the Ingress's namespace, the Service and
// its port) to the address nginx proxies to, such as "10.215.0.42:8080".
type resolver func(namespace string, b networkingv1.IngressServiceBackend) (string, error)

// nginxOptions are the parts of the config that do not come from the
// Ingresses.
type nginxOptions struct {
	HTTPPort, HTTPSPort int
	// CertDir holds each TLS Secret as <CertDir>/<secret>/tls.crt and tls.key.
	CertDir string
}

// location is one nginx location: its match and directives.
type location struct {
	match      string // "/", "= /api/v1/watch", "/api/v1/watch/"
	directives []string
	// On plain HTTP, redirect to HTTPS instead of proxying: sslRedirect
	// when the host has TLS, forceSSLRedirect always.
	sslRedirect, forceSSLRedirect bool
	// scheme of proxy_pass: "http", or "https" with backend-protocol HTTPS.
	scheme string
	// sslSecret is proxy-ssl-secret's Secret name: its ca.crt verifies the
	// backends, at <CertDir>/<sslSecret>/ca.crt.
	sslSecret string
}

// nginxServers renders ings as nginx server blocks, as ingress-nginx would
// serve them in essence: per host one plain-HTTP server and, when an
// Ingress lists the host under spec.tls, one HTTPS server with that
// Secret's certificate; per path the locations of its pathType (Prefix
// /p is "= /p" and "/p/", Exact is "= /p"), proxied to the resolved
// backend, with the directives of the Ingress's annotations:
//
//	proxy-body-size          client_max_body_size
//	proxy-buffering          proxy_buffering
//	proxy-request-buffering  proxy_request_buffering
//	client-body-buffer-size  client_body_buffer_size
//	proxy-{connect,send,read}-timeout  proxy_*_timeout (seconds)
//	ssl-redirect, force-ssl-redirect   plain HTTP answers 308 to https
//	                                   (ingress-nginx's http-redirect-code)
//	backend-protocol         HTTP or HTTPS: proxy_pass's scheme
//	proxy-ssl-verify         proxy_ssl_verify
//	proxy-ssl-secret         proxy_ssl_trusted_certificate <CertDir>/<name>/ca.crt
//	                         (namespace/name; the Secret is mounted there)
//	proxy-ssl-name           proxy_ssl_name
//	proxy-ssl-server-name    proxy_ssl_server_name
//
// ssl-redirect defaults to true for a host with TLS, as in ingress-nginx.
// Any other nginx.ingress.kubernetes.io annotation is an error: one the
// operator adds must be rendered here (and so tested) or refused.
func nginxServers(ings []networkingv1.Ingress, resolve resolver, o nginxOptions) (string, error) {
	type site struct {
		tlsSecret string
		locations []location
	}
	sites := map[string]*site{}
	var hosts []string
	for _, ing := range ings {
		loc, err := ingressDirectives(ing.Annotations)
		if err != nil {
			return "", fmt.Errorf("Ingress %s/%s: %w", ing.Namespace, ing.Name, err)
		}
		secretOf := map[string]string{}
		for _, t := range ing.Spec.TLS {
			for _, h := range t.Hosts {
				secretOf[h] = t.SecretName
			}
		}
		for _, rule := range ing.Spec.Rules {
			if rule.Host == "" || rule.HTTP == nil {
				return "", fmt.Errorf("Ingress %s/%s: a rule without a host or http paths is not rendered", ing.Namespace, ing.Name)
			}
			s := sites[rule.Host]
			if s == nil {
				s = &site{}
				sites[rule.Host] = s
				hosts = append(hosts, rule.Host)
			}
			if secret := secretOf[rule.Host]; secret != "" {
				if s.tlsSecret != "" && s.tlsSecret != secret {
					return "", fmt.Errorf("host %s: two TLS Secrets, %s and %s", rule.Host, s.tlsSecret, secret)
				}
				s.tlsSecret = secret
			}
			for _, p := range rule.HTTP.Paths {
				if p.Backend.Service == nil {
					return "", fmt.Errorf("Ingress %s/%s: path %s has no Service backend", ing.Namespace, ing.Name, p.Path)
				}
				upstream, err := resolve(ing.Namespace, *p.Backend.Service)
				if err != nil {
					return "", fmt.Errorf("Ingress %s/%s: path %s: %w", ing.Namespace, ing.Name, p.Path, err)
				}
				matches, err := locationMatches(p)
				if err != nil {
					return "", fmt.Errorf("Ingress %s/%s: %w", ing.Namespace, ing.Name, err)
				}
				for _, m := range matches {
					l := loc
					l.match = m
					l.directives = slices.Clone(loc.directives)
					if loc.sslSecret != "" {
						l.directives = append(l.directives, fmt.Sprintf("proxy_ssl_trusted_certificate %s/%s/ca.crt;", o.CertDir, loc.sslSecret))
					}
					l.directives = append(l.directives, "proxy_pass "+loc.scheme+"://"+upstream+";")
					s.locations = append(s.locations, l)
				}
			}
		}
	}
	slices.Sort(hosts)
	var b strings.Builder
	for _, h := range hosts {
		s := sites[h]
		slices.SortFunc(s.locations, func(a, b location) int { return strings.Compare(a.match, b.match) })
		for i := 1; i < len(s.locations); i++ {
			if s.locations[i].match == s.locations[i-1].match {
				return "", fmt.Errorf("host %s: location %s twice", h, s.locations[i].match)
			}
		}
		writeServer(&b, h, fmt.Sprintf("listen %d;", o.HTTPPort), nil, s.locations, true, s.tlsSecret != "")
		if s.tlsSecret != "" {
			tls := []string{
				fmt.Sprintf("ssl_certificate %s/%s/tls.crt;", o.CertDir, s.tlsSecret),
				fmt.Sprintf("ssl_certificate_key %s/%s/tls.key;", o.CertDir, s.tlsSecret),
				"ssl_protocols TLSv1.2 TLSv1.3;",
			}
			writeServer(&b, h, fmt.Sprintf("listen %d ssl;", o.HTTPSPort), tls, s.locations, false, true)
		}
	}
	return b.String(), nil
}

// writeServer writes one server block. On plain HTTP (plain true) the
// locations that redirect answer 308; hasTLS says whether the host also
// has an HTTPS server.
func writeServer(b *strings.Builder, host, listen string, head []string, locs []location, plain, hasTLS bool) {
	fmt.Fprintf(b, "server {\n    %s\n    server_name %s;\n", listen, host)
	for _, d := range head {
		fmt.Fprintf(b, "    %s\n", d)
	}
	for _, l := range locs {
		fmt.Fprintf(b, "    location %s {\n", l.match)
		if plain && (l.forceSSLRedirect || hasTLS && l.sslRedirect) {
			b.WriteString("        return 308 https://$host$request_uri;\n    }\n")
			continue
		}
		for _, d := range proxyHeaders {
			fmt.Fprintf(b, "        %s\n", d)
		}
		for _, d := range l.directives {
			fmt.Fprintf(b, "        %s\n", d)
		}
		b.WriteString("    }\n")
	}
	b.WriteString("}\n")
}

// proxyHeaders are the directives of every proxied location.
var proxyHeaders = []string{
	"proxy_http_version 1.1;",
	`proxy_set_header Connection "";`,
	"proxy_set_header Host $host;",
	"proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
	"proxy_set_header X-Forwarded-Proto $scheme;",
}

// locationMatches are the nginx location matches of an Ingress path.
func locationMatches(p networkingv1.HTTPIngressPath) ([]string, error) {
	path := p.Path
	if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " {};") {
		return nil, fmt.Errorf("path %q is not rendered", path)
	}
	typ := networkingv1.PathTypePrefix
	if p.PathType != nil {
		typ = *p.PathType
	}
	switch {
	case typ == networkingv1.PathTypeExact:
		return []string{"= " + path}, nil
	case typ == networkingv1.PathTypePrefix && path == "/":
		return []string{"/"}, nil
	case typ == networkingv1.PathTypePrefix:
		path = strings.TrimSuffix(path, "/")
		return []string{"= " + path, path + "/"}, nil
	}
	return nil, fmt.Errorf("path %s: pathType %s is not rendered", path, typ)
}

var (
	nginxSize = regexp.MustCompile(`^[0-9]+[kKmMgG]?$`)
	onOff     = regexp.MustCompile(`^(on|off)$`)
	seconds   = regexp.MustCompile(`^[0-9]+$`)
	hostName  = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`)
)

// ingressDirectives turns an Ingress's nginx annotations into the
// directives of its locations.
func ingressDirectives(annotations map[string]string) (location, error) {
	l := location{sslRedirect: true, scheme: "http"}
	for _, name := range slices.Sorted(maps.Keys(annotations)) {
		short, ok := strings.CutPrefix(name, annotationPrefix)
		if !ok {
			continue
		}
		v := annotations[name]
		check := func(re *regexp.Regexp, directive, suffix string) error {
			if !re.MatchString(v) {
				return fmt.Errorf("annotation %s: %q is not a valid value", name, v)
			}
			l.directives = append(l.directives, directive+" "+v+suffix+";")
			return nil
		}
		var err error
		switch short {
		case "proxy-body-size":
			err = check(nginxSize, "client_max_body_size", "")
		case "client-body-buffer-size":
			err = check(nginxSize, "client_body_buffer_size", "")
		case "proxy-buffering":
			err = check(onOff, "proxy_buffering", "")
		case "proxy-request-buffering":
			err = check(onOff, "proxy_request_buffering", "")
		case "proxy-connect-timeout":
			err = check(seconds, "proxy_connect_timeout", "s")
		case "proxy-send-timeout":
			err = check(seconds, "proxy_send_timeout", "s")
		case "proxy-read-timeout":
			err = check(seconds, "proxy_read_timeout", "s")
		case "backend-protocol":
			switch v {
			case "HTTP", "HTTPS":
				l.scheme = strings.ToLower(v)
			default:
				err = fmt.Errorf("%q is not rendered (HTTP or HTTPS)", v)
			}
		case "proxy-ssl-verify":
			err = check(onOff, "proxy_ssl_verify", "")
		case "proxy-ssl-server-name":
			err = check(onOff, "proxy_ssl_server_name", "")
		case "proxy-ssl-name":
			err = check(hostName, "proxy_ssl_name", "")
		case "proxy-ssl-secret":
			_, secret, ok := strings.Cut(v, "/")
			if !ok || !hostName.MatchString(secret) {
				err = fmt.Errorf("%q is not namespace/name", v)
				break
			}
			l.sslSecret = secret
		case "ssl-redirect":
			l.sslRedirect, err = strconv.ParseBool(v)
		case "force-ssl-redirect":
			l.forceSSLRedirect, err = strconv.ParseBool(v)
		default:
			err = fmt.Errorf("annotation %s is not rendered (add it to ingressDirectives, or drop it)", name)
		}
		if err != nil {
			return location{}, fmt.Errorf("annotation %s: %w", name, err)
		}
	}
	return l, nil
}

// nginxConfig is a whole nginx.conf around servers for the compose image
// (kvstore-local/nginx:bookworm) on a read-only root: pid and temp files in
// /tmp, logs to the container's stdout and stderr.
func nginxConfig(servers string) string {
	return `worker_processes 1;
pid /tmp/nginx.pid;
error_log /dev/stderr notice;
events {
    worker_connections 1024;
}
http {
    default_type application/octet-stream;
    server_tokens off;
    access_log /dev/stdout;
    client_body_temp_path /tmp/client_body;
    proxy_temp_path /tmp/proxy;
    fastcgi_temp_path /tmp/fastcgi;
    uwsgi_temp_path /tmp/uwsgi;
    scgi_temp_path /tmp/scgi;
` + indent(servers) + "}\n"
}

func indent(s string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(s, "\n") {
		if strings.TrimSpace(line) != "" {
			b.WriteString("    " + line)
		}
	}
	return b.String()
}
