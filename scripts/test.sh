#!/usr/bin/env bash
# The test suite that runs anywhere (no GPU): brings the build up to date, then meson test
# without the gpu suite. The GPU suite runs on the H100 through scripts/gpu-check.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
ninja -C build
meson test -C build --no-suite gpu --print-errorlogs "$@"
