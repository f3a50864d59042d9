#!/usr/bin/env bash
# verify-generated.sh fails when `make manifests generate` changes a
# generated file: the CRD (config/crd/bases), the RBAC role
# (config/rbac/role.yaml), api/v1/zz_generated.deepcopy.go, or the files
# that hack/chartgen makes from them, from values.yaml and from the alert
# rules (config/prometheus/backup-rules.yaml: both PrometheusRules).
# Those files are never edited by hand; this catches an API or RBAC marker
# or a values.yaml change committed without regenerating. The regenerated
# files are left in place.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
paths=(config/crd/bases config/rbac/role.yaml api/v1/zz_generated.deepcopy.go charts/kvstore/templates/crd.yaml charts/kvstore/templates/_manager_rules.tpl charts/kvstore/README.md config/prometheus/prometheusrule.yaml charts/kvstore/templates/prometheusrule.yaml)
before="$(mktemp -d)"
trap 'rm -rf "$before"' EXIT
tar -cf - "${paths[@]}" | tar -C "$before" -xf -
make --no-print-directory manifests generate >/dev/null
status=0
for p in "${paths[@]}"; do
	if ! diff -ru "$before/$p" "$p"; then status=1; fi
done
if ((status)); then
	echo "verify-generated: the files above were stale; they are regenerated now: commit them (make manifests generate)" >&2
	exit 1
fi
echo "verify-generated: CRD, RBAC role, deepcopy and the chart's generated files are up to date" >&2
