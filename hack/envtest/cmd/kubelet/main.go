// Command kubelet is an unmodified kubelet, built from the Go module proxy
// (k8s.io/kubernetes, pinned by ../../go.mod) for the local cluster of
// hack/kube/. It mirrors k8s.io/kubernetes/cmd/kubelet. Build it with
// hack/kube/bins.sh, which stamps the version.
package main

import (
	"context"
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // for JSON log format registration
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // for client metric registration
	_ "k8s.io/component-base/metrics/prometheus/version"  // for version metric registration
	"k8s.io/kubernetes/cmd/kubelet/app"
)

func main() {
	command := app.NewKubeletCommand(context.Background())
	code := cli.Run(command)
	os.Exit(code)
}
