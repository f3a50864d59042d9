// Command kube-scheduler is an unmodified Kubernetes scheduler, built from
// the Go module proxy (k8s.io/kubernetes, pinned by ../../go.mod) for the
// local cluster of hack/kube/. It mirrors k8s.io/kubernetes/cmd/kube-scheduler.
// Build it with hack/kube/bins.sh, which stamps the version.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register" // for JSON log format registration
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version" // for version metric registration
	"k8s.io/kubernetes/cmd/kube-scheduler/app"
)

func main() {
	command := app.NewSchedulerCommand()
	code := cli.Run(command)
	os.Exit(code)
}
