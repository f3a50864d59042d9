// Command etcd is a plain etcd server built from the Go module proxy.
//
// It exists so that hack/build-etcd.sh can produce bin/etcd without
// downloading release binaries; it is an unmodified etcd (same flags,
// same behaviour) and is also usable as the etcd of a Kubernetes envtest.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
