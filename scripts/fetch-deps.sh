#!/usr/bin/env bash
# Downloads the Debian packages of headers the H100 image lacks (nlohmann-json, CLI11) into
# .deps/debs, so that scripts/gpu-check.sh can unpack them there (carry .deps with the run).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .deps/debs
cd .deps/debs
for p in nlohmann-json3-dev libcli11-dev; do
  ls ${p}_*.deb >/dev/null 2>&1 || apt-get download "$p"
done
ls -la
