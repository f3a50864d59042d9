// Package controller is the KVStore reconciler: it turns a kvstore.dev/v1
// KVStore into the objects a running store needs and keeps them in shape.
//
// The work is split the way the house style asks:
//
//   - desired*.go: pure functions from a KVStore (and the data the
//     reconciler fetched, like an existing token or certificate) to
//     client-go apply configurations. No client, no clock, no environment;
//     unit-tested on their own.
//   - tls.go: the certificate decisions (keep, issue, re-issue at two
//     thirds of the lifetime), pure given the clock's time.
//   - status.go: conditions from the StatefulSet's status, pure.
//   - reconciler.go: fetch, build, server-side apply with the field owner
//     "kvstore-operator" (skipping objects whose fields we own already hold
//     the desired values, so an unchanged KVStore causes no writes), and
//     write status only when it changed.
//
// Every child carries a controller owner reference to its KVStore, so the
// garbage collector deletes them with it. PersistentVolumeClaims are made
// by the StatefulSet from its template and are kept (the retention policy
// is Retain) when the KVStore is deleted or scaled down.
package controller
