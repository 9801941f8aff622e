#!/usr/bin/env bash
# Packs the prebuilt binaries of a device run into one gzip'd tar, so that they fit the device tool's
# 64 MiB carry: qbench, the GPU tests and two bench_kernels builds take ~47 MB as files (with the
# tracked tree's ~18 MB, over the limit) and ~12 MB packed.
#   local:  scripts/carry-pack.sh pack [DIR...]   DIRs under .carry/ (default: whichever of .carry/gpu,
#           .carry/kernels, .carry/ab, .carry/attn exist) -> .carry/pack/pack.tgz; then carry
#           .carry/pack (and .carry/data) instead of the DIRs
#   device: scripts/carry-pack.sh unpack          restores the DIRs; scripts/gpu-runs.sh,
#           kernels/bench/run_device.sh and kernels/bench/ab_device.sh call it first. A warm machine
#           keeps what an earlier call unpacked: unpacking again happens only when the pack differs.
set -euo pipefail
cd "$(dirname "$0")/.."
pack=.carry/pack/pack.tgz
marker=.carry/.unpacked-sha256
case "${1:-}" in
  pack)
    shift
    dirs=("$@")
    if [ ${#dirs[@]} -eq 0 ]; then
      for d in .carry/gpu .carry/kernels .carry/ab .carry/attn; do [ -d "$d" ] && dirs+=("$d"); done
    fi
    [ ${#dirs[@]} -gt 0 ] || { echo "carry-pack: nothing to pack (stage binaries into .carry/ first)" >&2; exit 1; }
    for d in "${dirs[@]}"; do
      case "$d" in .carry/?*) ;; *) echo "carry-pack: $d is not a folder under .carry/" >&2; exit 2 ;; esac
      [ -d "$d" ] || { echo "carry-pack: no folder $d" >&2; exit 1; }
    done
    mkdir -p .carry/pack
    tar -czf "$pack.tmp" "${dirs[@]}"
    mv "$pack.tmp" "$pack"
    echo "carry-pack: $(du -sh "${dirs[@]}" | awk '{print $2 " " $1}' | paste -sd' ') -> $pack $(du -h "$pack" | cut -f1)"
    echo "carry-pack: carry .carry/pack (not ${dirs[*]})" ;;
  unpack)
    [ -f "$pack" ] || exit 0 # nothing packed: the folders were carried as they are
    sha=$(sha256sum "$pack" | cut -d' ' -f1)
    if [ -f "$marker" ] && [ "$(cat "$marker")" = "$sha" ]; then
      echo "carry-pack: already unpacked (${sha:0:12})"
    else
      files=$(tar -xzvf "$pack")
      echo "$sha" > "$marker"
      echo "carry-pack: unpacked $(awk -F/ 'NF > 1 && $2 != "" {print $1 "/" $2}' <<< "$files" | sort -u | paste -sd' ') (${sha:0:12})"
    fi ;;
  *) echo "usage: scripts/carry-pack.sh pack [.carry/DIR...] | unpack" >&2; exit 2 ;;
esac
