// Command kube-apiserver is an unmodified Kubernetes API server, built from
// the Go module proxy (k8s.io/kubernetes, pinned by ../../go.mod) for use as
// an envtest control plane. It mirrors k8s.io/kubernetes/cmd/kube-apiserver.
// Build it with hack/envtest-bins.sh, which stamps the version.
package main

import (
	"os"
	_ "time/tzdata" // for timeZone support in CronJob

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // for JSON log format registration
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // load all the prometheus client-go plugins
	_ "k8s.io/component-base/metrics/prometheus/version"  // for version metric registration
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	command := app.NewAPIServerCommand()
	code := cli.Run(command)
	os.Exit(code)
}
