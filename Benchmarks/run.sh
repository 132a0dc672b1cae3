#!/usr/bin/env bash
# Runs the benchmark suites through ordo-one's BenchmarkTool directly.
#
# `swift package benchmark` builds everything and can run the suites itself, but with benchmark
# 1.38 on Swift 6.3 (Linux) the suites that start mqan's thread pool (Kernels, Forward) print no
# results when the plugin spawns them, while the same tool run from a shell does. This script
# builds through the plugin (`list`) and then runs the tool itself.
#
#   ./run.sh                                   every suite
#   ./run.sh --targets Kernels --filter 'output layer'
#   ./run.sh --targets Forward --metric wallClock
set -euo pipefail
cd "$(dirname "$0")"
swift package benchmark list > /dev/null
bin="$(swift build -c release --show-bin-path)"
targets="Kernels,Forward,Compile"
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --targets) targets="$2"; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
paths=()
IFS=',' read -ra names <<< "$targets"
for t in "${names[@]}"; do paths+=(--benchmark-executable-paths "$bin/$t"); done
preload=""
[ -f "$bin/libMallocInterposerSwift.so" ] && preload="$bin/libMallocInterposerSwift.so"
exec env ${preload:+LD_PRELOAD="$preload"} "$bin/BenchmarkTool" --command run --baseline-storage-path "$PWD" \
  --format text --grouping benchmark --benchmark-package-identifier benchmark --targets "$targets" \
  "${paths[@]}" ${args[@]+"${args[@]}"}
