#!/usr/bin/env bash
# install-chromium.sh makes sure Debian's chromium (and fonts, so that
# screenshots show text) is installed for the web console's browser tests
# (test/e2e/console). It does nothing when chromium
# is already on the PATH, so `make test` runs it every time. The tests drive
# this system chromium; nothing ever downloads a browser of its own.
#
# Installing needs apt-get (Debian, Ubuntu) and root or sudo. Where that is
# not possible it fails when CI is set (CI must run the browser tests) and
# otherwise only warns: the browser tests then skip, loudly.
#
# On success it prints the chromium path.
set -euo pipefail

packages=(chromium fonts-liberation fonts-dejavu-core)

if path="$(command -v chromium)"; then
	echo "$path"
	exit 0
fi

cannot() {
	if [[ -n "${CI:-}" ]]; then
		echo "install-chromium.sh: chromium is missing and $1" >&2
		exit 1
	fi
	echo "install-chromium.sh: WARNING: chromium is missing and $1; the browser tests will be skipped" >&2
	exit 0
}

command -v apt-get >/dev/null || cannot "apt-get is not available; install chromium yourself"
if [[ "$(id -u)" -ne 0 ]]; then
	command -v sudo >/dev/null || cannot "this is not root and sudo is not available"
fi

echo "installing ${packages[*]} with apt-get..." >&2
# shellcheck source=hack/lib/apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"
apt_install "${packages[@]}"

if ! path="$(command -v chromium)"; then
	echo "install-chromium.sh: apt-get succeeded but chromium is still not on the PATH" >&2
	exit 1
fi
"$path" --version >&2 || true
echo "$path"
