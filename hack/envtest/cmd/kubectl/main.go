// Command kubectl is an unmodified kubectl, built from the Go module proxy
// (k8s.io/kubectl, pinned by ../../go.mod) for use next to an envtest
// control plane. It mirrors k8s.io/kubernetes/cmd/kubectl. Build it with
// hack/envtest-bins.sh, which stamps the version.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"

	// Import to initialize client auth plugins.
	_ "k8s.io/client-go/plugin/pkg/client/auth"
)

func main() {
	// Set the verbosity before the command is built (as upstream does), so
	// klog works while plugins and .kuberc are handled.
	logs.GlogSetter(cmd.GetLogVerbosity(os.Args)) // nolint:errcheck
	command := cmd.NewDefaultKubectlCommand()
	if err := cli.RunNoErrOutput(command); err != nil {
		util.CheckErr(err)
	}
}
