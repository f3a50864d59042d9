// Package alerts tests the shipped alert rules,
// config/prometheus/backup-rules.yaml, with Prometheus's own promtool
// (hack/install-promtool.sh builds it from the Go module proxy into bin/;
// $KVSTORE_PROMTOOL_BIN names another; a missing one fails the tests):
// `promtool check rules`, then `promtool test rules` on
// testdata/backup-rules.test.yaml, the alert KVStoreBackupMissing on
// hand-written series of the operator and of `kvstore backup`. The same rule
// on series recorded from the operator's /metrics after a failed backup is
// internal/controller's TestBackupAlertFires; the chart's and kustomize's
// PrometheusRules are this file by test/e2e/chart's TestChartDrift and
// TestPrometheusRuleTemplate.
//
// The package has tests only.
package alerts
