// Package kube is the end-to-end suite of the operator, the chart and the
// server on a real Kubernetes: the local single-node cluster of hack/kube
// (test/harness/kube brings it up, imports the images built by
// hack/images.sh --operator and installs the chart). Each scenario of
// issue 12 is a subtest of TestKube with a namespace of its own that
// enforces the restricted Pod Security Standard; they run in parallel,
// except the node restart, which disturbs every pod and runs alone after
// them. A failing scenario leaves its namespace's objects, events and logs
// and the operator's log in its artifacts.
//
// The scenarios: the sample KVStore (pods Ready with no restart, uid
// 65532 and a read-only root filesystem, Available, one leader, a
// linearizable read of a write through the client Service); the leader's
// pod deleted under writes (a new leader within 5 s, no acknowledged write
// lost); scaling 3 → 5 → 3 → 1 → 3 under writes; a rolling update of the
// config and of the image under writes (one pod at a time, only retriable
// errors); the KVStore deleted and created again (PVCs kept, data back);
// the node's kubelet and containerd restarted (pods back, data back).
//
// The Ingress (HTTPS through Traefik, the client pod) is test/e2e/ingress's.
package kube
