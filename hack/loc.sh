#!/bin/sh
# loc.sh prints the non-blank lines of Go in product code, test code
# (tests, test-only packages, hack/) and benchmark code (bench/,
# internal/operatorbench/) of the committed tree: issue 16 reports them
# before and after.
cd ${1:-.}
files=$(git ls-files '*.go' | grep -v zz_generated)
bench=$(echo "$files" | grep -E '^(bench/|internal/operatorbench/)')
rest=$(echo "$files" | grep -vE '^(bench/|internal/operatorbench/)')
test=$(echo "$rest" | grep -E '(_test\.go$|^internal/(dockertest|kubetest|consoletest|testlog|charttest|lincheck|testharness|e2e)/|^test/|^hack/)')
prod=$(echo "$rest" | grep -vE '(_test\.go$|^internal/(dockertest|kubetest|consoletest|testlog|charttest|lincheck|testharness|e2e)/|^test/|^hack/)')
c() { [ -z "$1" ] && echo 0 && return; cat $1 | grep -cv '^\s*$'; }
echo "product $(c "$prod") test $(c "$test") bench $(c "$bench")"
