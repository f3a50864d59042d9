// Package controller is the KVStore reconciler: it turns a kvstore.dev/v1
// KVStore into the objects a running store needs and keeps them in shape.
//
// A reconcile has the shape of cert-manager's controllers:
//
//   - observe.go: read everything once into an observed struct: the
//     KVStore's children and Secrets (from the cache), whether the optional
//     CRDs are installed, and the Raft configuration from the servers
//     (ClusterClient; HTTPClusterClient calls package client over HTTPS,
//     verified against the pods' CA bundle).
//   - plan.go: planFor, a pure function from the KVStore, the observation,
//     the options and the clock to the desired children in dependency
//     order, the TLS decision and at most one membership step. It calls the
//     pure builders: desired*.go (client-go apply configurations), ca.go
//     (the CA and its rotation phases, decideCA), tls.go (the edge
//     certificate: keep, issue, re-issue at two thirds of the lifetime),
//     podtls.go (the pods' API and per-pod peer certificates in one
//     Secret, decidePodTLS), tokens.go (spec.auth.tokens rendered into the
//     servers' tokens file) and membership.go (nextStep).
//   - apply.go: act, which applies the plan with one apply function for
//     every kind: skip an object whose fields we own already hold the
//     desired values (a per-kind comparison, so an unchanged KVStore causes
//     no writes), else server-side apply as field owner "kvstore-operator"
//     with force, and record an event; then the membership call.
//   - status.go: conditions from the observation and the plan, pure;
//     reconciler.go writes them only when they changed.
//
// Every child carries a controller owner reference to its KVStore, so the
// garbage collector deletes them with it. PersistentVolumeClaims are made
// by the StatefulSet from its template and are kept (the retention policy
// is Retain) when the KVStore is deleted or scaled down.
package controller
