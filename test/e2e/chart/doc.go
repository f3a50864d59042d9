// Package chart tests the Helm chart charts/kvstore with a real helm
// (hack/install-helm.sh builds it from the Go module proxy into bin/) and a
// real API server (envtest's, see internal/kubetest):
//
//   - `helm lint --strict` with the default values and every example values
//     file in charts/kvstore/examples;
//   - `helm template` of each, applied with a server-side dry run, so that the
//     API server validates every rendered object (the KVStore against the
//     chart's own CRD, the pods against the restricted Pod Security Standard);
//   - the values schema refusing a table of bad values with readable errors;
//   - the chart's CRD and ClusterRole equal to what controller-gen writes in
//     config/, and the schema of instance.spec covering the CRD's spec;
//   - the README's values table in step with values.yaml;
//   - helm install, upgrade (with a CRD change) and uninstall against an API
//     server that starts without the CRD;
//   - the operator binary, run as the chart's ServiceAccount, reconciling a
//     KVStore with nothing but the chart's RBAC (cluster-wide and with
//     watchNamespace), and the NOTES for several values.
//
// The package has tests only. helm is $HELM, else bin/helm; the control plane
// is $KUBEBUILDER_ASSETS, else bin/k8s. Without them the tests fail when $CI
// is set and are skipped otherwise, naming the command that provides them.
package chart
