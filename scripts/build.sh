#!/usr/bin/env bash
# Builds the static fedicache binary. The Dockerfile's build stage runs exactly this, and so
# does CI: what the image ships is what CI built and tested.
#
#   scripts/build.sh [OUTPUT]      default dist/fedicache
#
# VERSION names the build (default: git describe, else "dev"); GOOS and GOARCH cross-compile.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:-dist/fedicache}
version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}

# No cgo: the binary runs on an image with no C library; -trimpath keeps build paths out of it.
CGO_ENABLED=0 go build -trimpath -buildvcs=false \
  -ldflags "-s -w -X main.version=${version}" \
  -o "$out" ./cmd/fedicache

# A dynamically linked binary would not start on the final image: refuse one.
if command -v readelf >/dev/null && readelf -l "$out" 2>/dev/null | grep -q 'INTERP'; then
  echo "build: $out is dynamically linked" >&2
  exit 1
fi
# When it runs here, it must report the version it was given.
if [ "${GOOS:-$(go env GOOS)}" = "$(go env GOHOSTOS)" ] && [ "${GOARCH:-$(go env GOARCH)}" = "$(go env GOHOSTARCH)" ]; then
  got=$("$out" version)
  case "$got" in
    *"$version"*) ;;
    *) echo "build: $out version says \"$got\", want $version" >&2; exit 1 ;;
  esac
fi
echo "built $out ($version)"
