// Command pause is the process of every pod sandbox of the local cluster
// (hack/kube/): it holds the pod's namespaces open and sleeps until it is
// sent SIGINT or SIGTERM. It stands in for registry.k8s.io/pause, which
// cannot be pulled here; hack/kube/images.sh packs it into an image on its
// own.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
}
