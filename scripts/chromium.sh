#!/usr/bin/env bash
# Installs Debian's chromium package for the status page's browser test
# (cmd/fedicache/statuspage_browser_test.go), unless /usr/bin/chromium is there already.
# Safe to run again; quiet unless something fails. Needs root or sudo.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null; then
    echo "chromium.sh: installing chromium needs root or sudo" >&2
    exit 1
  fi
  sudo=(sudo)
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
install() {
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends chromium >"$log" 2>&1
}
# The package lists may be missing or stale (a fresh container): refresh them only then.
if ! install; then
  if ! "${sudo[@]}" apt-get update -q >"$log" 2>&1 || ! install; then
    cat "$log" >&2
    echo "chromium.sh: could not install Debian's chromium package" >&2
    exit 1
  fi
fi
if [ ! -x /usr/bin/chromium ]; then
  echo "chromium.sh: the chromium package installed no /usr/bin/chromium" >&2
  exit 1
fi
