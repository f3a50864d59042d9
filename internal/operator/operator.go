package operator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	kvv1 "kvstore.dev/kvstore/api/v1"
	"kvstore.dev/kvstore/internal/controller"
)

// Scheme has every kind the operator reads or writes.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := kvv1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// Logger builds the operator's structured logger on slog.
func Logger(c Config, w io.Writer) logr.Logger {
	level := map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "error": slog.LevelError}[c.LogLevel]
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if c.LogFormat == "text" {
		h = slog.NewTextHandler(w, opts)
	}
	return logr.FromSlogHandler(h)
}

// RESTConfig finds the cluster: --kubeconfig, else in-cluster, $KUBECONFIG
// or ~/.kube/config.
func RESTConfig(c Config) (*rest.Config, error) {
	if c.Kubeconfig != "" {
		rc, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
		if err != nil {
			return nil, err
		}
		// As ctrl.GetConfig does: no client-side rate limit (client-go's
		// default of 5 requests/s throttled reconciles 9x in the operator
		// benchmark); the API server's priority and fairness applies.
		if rc.QPS == 0 {
			rc.QPS = -1
		}
		return rc, nil
	}
	return ctrl.GetConfig()
}

// NewManager creates the manager with the KVStore controller registered.
func NewManager(c Config, rc *rest.Config, log logr.Logger) (manager.Manager, error) {
	ctrl.SetLogger(log)
	opts := ctrl.Options{
		Scheme:                        Scheme(),
		Logger:                        log,
		Metrics:                       metricsOptions(c),
		HealthProbeBindAddress:        c.ProbeAddr,
		LeaderElection:                c.LeaderElect,
		LeaderElectionID:              "kvstore-operator.kvstore.dev",
		LeaderElectionNamespace:       c.LeaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
		Controller:                    config.Controller{MaxConcurrentReconciles: c.MaxConcurrentReconciles, SkipNameValidation: &c.skipNameValidation},
		// The operator's own Secrets and ConfigMaps only, in the watched
		// namespace when there is one.
		Cache:  controller.CacheOptions(),
		Client: controller.ClientOptions(),
	}
	if c.WatchNamespace != "" {
		opts.Cache = controller.CacheOptions(c.WatchNamespace)
	}
	mgr, err := ctrl.NewManager(rc, opts)
	if err != nil {
		return nil, fmt.Errorf("create manager: %w", err)
	}
	build := controller.BuildOptions{DefaultImage: c.DefaultImage, ClusterDomain: c.ClusterDomain,
		OperatorNamespace: c.OperatorNamespace, IngressControllerNamespace: c.IngressControllerNamespace}
	r := &controller.Reconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder(controller.FieldOwner),
		Options:   build,
		// Membership changes go to each KVStore's client Service.
		Cluster: &controller.HTTPClusterClient{Options: build},
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return nil, err
	}
	br := &controller.BackupReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder(controller.FieldOwner),
		Source:    &controller.HTTPSnapshotSource{Options: build},
		Options:   build,
	}
	if err := br.SetupWithManager(mgr); err != nil {
		return nil, err
	}
	sched := &controller.BackupScheduler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder(controller.FieldOwner)}
	if err := sched.SetupWithManager(mgr); err != nil {
		return nil, err
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, err
	}
	// Ready once the informer caches have synced: before that the operator
	// would act on an empty view of the cluster.
	if err := mgr.AddReadyzCheck("caches", func(req *http.Request) error {
		ctx, cancel := context.WithTimeout(req.Context(), time.Second)
		defer cancel()
		if !mgr.GetCache().WaitForCacheSync(ctx) {
			return errors.New("informer caches have not synced yet")
		}
		return nil
	}); err != nil {
		return nil, err
	}
	return mgr, nil
}

// metricsOptions serves the metrics as kubebuilder's v4 layout does:
// with MetricsSecure, over HTTPS (a self-signed certificate) to clients
// whose bearer token the API server authenticates and authorizes for GET
// /metrics (config/rbac/metrics_auth_role.yaml lets the operator ask,
// metrics_reader_role.yaml is what a scraper is bound to).
func metricsOptions(c Config) metricsserver.Options {
	o := metricsserver.Options{BindAddress: c.MetricsAddr}
	if c.MetricsSecure {
		o.SecureServing = true
		o.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	return o
}

// Run runs the operator until ctx is cancelled.
func Run(ctx context.Context, c Config, log logr.Logger) error {
	rc, err := RESTConfig(c)
	if err != nil {
		return fmt.Errorf("find the cluster: %w", err)
	}
	mgr, err := NewManager(c, rc, log)
	if err != nil {
		return err
	}
	log.Info("starting", "watchNamespace", c.WatchNamespace, "operatorNamespace", c.OperatorNamespace, "metricsSecure", c.MetricsSecure, "leaderElect", c.LeaderElect, "defaultImage", c.DefaultImage)
	return mgr.Start(ctx)
}
