// Package operator wires the KVStore controller (internal/controller) into a
// controller-runtime manager: configuration from defaults and flags, the
// manager's cache, leader election, health probes and metrics.
package operator

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Config is the operator's configuration. Its zero value is not valid; start
// from Default.
type Config struct {
	// MetricsAddr serves the operator's Prometheus metrics ("0" disables).
	MetricsAddr string
	// MetricsSecure serves the metrics over HTTPS, to clients whose token
	// the API server authenticates (TokenReview) and authorizes for GET
	// /metrics (SubjectAccessReview).
	MetricsSecure bool
	// ProbeAddr serves /healthz and /readyz.
	ProbeAddr string
	// LeaderElect makes replicas of the operator elect one active leader
	// through a Lease.
	LeaderElect bool
	// LeaderElectionNamespace holds the Lease; empty: the operator's own
	// namespace (in-cluster).
	LeaderElectionNamespace string
	// WatchNamespace restricts the operator to one namespace (its cache and
	// so its RBAC); empty: all. Default: $WATCH_NAMESPACE.
	WatchNamespace string
	// OperatorNamespace is the operator's own namespace, which the
	// KVStores' NetworkPolicies admit to the API and metrics ports.
	// Default: $POD_NAMESPACE (the downward API).
	OperatorNamespace string
	// IngressControllerNamespace is the ingress controller's namespace,
	// admitted to the API port of KVStores with an Ingress (unless
	// spec.ingress.controllerNamespace overrides it).
	IngressControllerNamespace string
	// DefaultImage is the server image of KVStores without spec.image.
	DefaultImage string
	// ClusterDomain is the cluster's DNS suffix, for certificate names.
	ClusterDomain string
	// Kubeconfig is a kubeconfig file; empty: in-cluster config, or
	// $KUBECONFIG, or ~/.kube/config.
	Kubeconfig string
	// MaxConcurrentReconciles is how many KVStores are reconciled at once.
	MaxConcurrentReconciles int
	// LogLevel is debug, info or error; LogFormat json or text.
	LogLevel, LogFormat string

	// skipNameValidation lets a test process start more than one operator
	// (controller-runtime refuses a second controller named "kvstore" in
	// one process, for its metrics).
	skipNameValidation bool
}

// DefaultImage is the server image the operator uses by default: the image
// `hack/images.sh` builds.
const DefaultImage = "kvstore/kvstore:local"

// Default returns the built-in defaults.
func Default() Config {
	return Config{
		MetricsAddr:                ":8443",
		MetricsSecure:              true,
		ProbeAddr:                  ":8081",
		LeaderElect:                true,
		DefaultImage:               DefaultImage,
		ClusterDomain:              "cluster.local",
		IngressControllerNamespace: "ingress-nginx",
		MaxConcurrentReconciles:    4,
		LogLevel:                   "info",
		LogFormat:                  "json",
	}
}

// Load applies the environment ($WATCH_NAMESPACE, $POD_NAMESPACE) and then
// the flags in args over the defaults, and validates the result.
func Load(args []string, stderr io.Writer) (Config, error) {
	return load(args, os.Getenv, stderr)
}

func load(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	c := Default()
	c.WatchNamespace = getenv("WATCH_NAMESPACE")
	c.OperatorNamespace = getenv("POD_NAMESPACE")
	fs := flag.NewFlagSet("kvstore-operator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.MetricsAddr, "metrics-bind-address", c.MetricsAddr, `address of the metrics endpoint ("0" disables)`)
	fs.StringVar(&c.ProbeAddr, "health-probe-bind-address", c.ProbeAddr, "address of /healthz and /readyz")
	fs.BoolVar(&c.MetricsSecure, "metrics-secure", c.MetricsSecure, "serve metrics over HTTPS to authenticated and authorized clients only (false: plain HTTP to anyone)")
	fs.BoolVar(&c.LeaderElect, "leader-elect", c.LeaderElect, "elect one active operator through a Lease")
	fs.StringVar(&c.LeaderElectionNamespace, "leader-election-namespace", c.LeaderElectionNamespace, "namespace of the leader election Lease (default: the operator's own)")
	fs.StringVar(&c.WatchNamespace, "watch-namespace", c.WatchNamespace, "manage KVStores in this namespace only (default: $WATCH_NAMESPACE, else all namespaces)")
	fs.StringVar(&c.OperatorNamespace, "operator-namespace", c.OperatorNamespace, "the operator's namespace, admitted to the KVStores' API and metrics ports by their NetworkPolicies (default: $POD_NAMESPACE)")
	fs.StringVar(&c.IngressControllerNamespace, "ingress-controller-namespace", c.IngressControllerNamespace, "the ingress controller's namespace, admitted to the API port of KVStores with an Ingress")
	fs.StringVar(&c.DefaultImage, "default-image", c.DefaultImage, "server image for KVStores without spec.image")
	fs.StringVar(&c.ClusterDomain, "cluster-domain", c.ClusterDomain, "the cluster's DNS domain")
	fs.StringVar(&c.Kubeconfig, "kubeconfig", c.Kubeconfig, "kubeconfig file (default: in-cluster, $KUBECONFIG, ~/.kube/config)")
	fs.IntVar(&c.MaxConcurrentReconciles, "max-concurrent-reconciles", c.MaxConcurrentReconciles, "KVStores reconciled at once")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info or error")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "json or text")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	return c, c.Validate()
}

// Validate reports every invalid field, each by its flag name.
func (c Config) Validate() error {
	var errs []error
	bad := func(flag, format string, a ...any) {
		errs = append(errs, fmt.Errorf("--%s: "+format, append([]any{flag}, a...)...))
	}
	if c.MetricsAddr != "0" {
		if err := validAddr(c.MetricsAddr); err != nil {
			bad("metrics-bind-address", "%v", err)
		}
	}
	if err := validAddr(c.ProbeAddr); err != nil {
		bad("health-probe-bind-address", "%v", err)
	}
	for flag, ns := range map[string]string{"watch-namespace": c.WatchNamespace, "leader-election-namespace": c.LeaderElectionNamespace,
		"operator-namespace": c.OperatorNamespace, "ingress-controller-namespace": c.IngressControllerNamespace} {
		if ns == "" {
			continue
		}
		if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
			bad(flag, "%q is not a namespace name: %s", ns, strings.Join(msgs, "; "))
		}
	}
	if strings.TrimSpace(c.DefaultImage) == "" || strings.ContainsAny(c.DefaultImage, " \t\n") {
		bad("default-image", "%q is not an image reference", c.DefaultImage)
	}
	if msgs := validation.IsDNS1123Subdomain(c.ClusterDomain); len(msgs) > 0 {
		bad("cluster-domain", "%q is not a DNS domain: %s", c.ClusterDomain, strings.Join(msgs, "; "))
	}
	if c.MaxConcurrentReconciles < 1 || c.MaxConcurrentReconciles > 64 {
		bad("max-concurrent-reconciles", "%d is out of range 1..64", c.MaxConcurrentReconciles)
	}
	switch c.LogLevel {
	case "debug", "info", "error":
	default:
		bad("log-level", "%q is not one of debug, info, error", c.LogLevel)
	}
	switch c.LogFormat {
	case "json", "text":
	default:
		bad("log-format", "%q is not one of json, text", c.LogFormat)
	}
	return errors.Join(errs...)
}

func validAddr(a string) error {
	_, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", a, err)
	}
	if port == "" {
		return fmt.Errorf("%q has no port", a)
	}
	return nil
}
