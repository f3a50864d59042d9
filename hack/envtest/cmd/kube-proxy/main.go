// Command kube-proxy is an unmodified kube-proxy, built from the Go module
// proxy (k8s.io/kubernetes, pinned by ../../go.mod) for the local cluster of
// hack/kube/. It mirrors k8s.io/kubernetes/cmd/kube-proxy. Build it with
// hack/kube/bins.sh, which stamps the version.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // for JSON log format registration
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // for client metric registration
	_ "k8s.io/component-base/metrics/prometheus/version"  // for version metric registration
	"k8s.io/kubernetes/cmd/kube-proxy/app"
)

func main() {
	command := app.NewProxyCommand()
	code := cli.Run(command)
	os.Exit(code)
}
