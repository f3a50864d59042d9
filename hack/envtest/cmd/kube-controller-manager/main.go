// Command kube-controller-manager is an unmodified Kubernetes controller
// manager, built from the Go module proxy (k8s.io/kubernetes, pinned by
// ../../go.mod) for the local cluster of hack/kube/. It mirrors
// k8s.io/kubernetes/cmd/kube-controller-manager. Build it with
// hack/kube/bins.sh, which stamps the version.
package main

import (
	"os"
	_ "time/tzdata" // for CronJob Time Zone support

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // for JSON log format registration
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // load all the prometheus client-go plugins
	_ "k8s.io/component-base/metrics/prometheus/version"  // for version metric registration
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	command := app.NewControllerManagerCommand()
	code := cli.Run(command)
	os.Exit(code)
}
