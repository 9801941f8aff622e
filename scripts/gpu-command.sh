#!/usr/bin/env bash
# Prints the command line to give the device tool, with this checkout's revision filled in (the
# GPU machine gets the tree without .git, so manifests and benchmark JSON learn it from here).
cd "$(dirname "$0")/.."
dirty=0
[ -n "$(git status --porcelain --untracked-files=no)" ] && dirty=1
echo "QBENCH_GIT_COMMIT=$(git rev-parse HEAD) QBENCH_GIT_DIRTY=$dirty scripts/gpu-check.sh $*"
