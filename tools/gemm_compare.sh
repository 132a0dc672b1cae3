#!/usr/bin/env bash
# mqan's GEMM against OpenBLAS, side by side: runs the `gemm ...` benchmarks of the Kernels suite
# (Benchmarks/Benchmarks/Kernels/Gemm.swift: every GEMM shape of MQAN's default plans, one thread)
# and prints one row a shape: OpenBLAS's GFLOP/s, then each mqan variant's GFLOP/s with its ratio
# to OpenBLAS (> 1: mqan is faster): the median (p50) of the suite's FLOP/s metric, in 10^9/s.
#
#   tools/gemm_compare.sh                          # every shape (about 2 minutes after the build)
#   tools/gemm_compare.sh '64x800x200 linear'      # shapes whose "MxNxK kind" matches a regex
#   tools/gemm_compare.sh --from results.csv       # a saved run (see --save) instead of running
#   tools/gemm_compare.sh --save results.csv ...   # keep the run's raw numbers (influx CSV)
#
# The plugin itself prints no ratio between two benchmarks of one run (baseline compare compares
# runs), hence this script. Run it with nothing else busy: the numbers are wall-clock rates.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
from="" save="" shapes='.*'
while [ $# -gt 0 ]; do
  case "$1" in
    --from) from="$2"; shift 2 ;;
    --save) save="$2"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) shapes="$1"; shift ;;
  esac
done

csv="$(mktemp)"
trap 'rm -f "$csv"' EXIT
if [ -n "$from" ]; then
  cp "$from" "$csv"
else
  if ! (cd "$root/Benchmarks" &&
    swift package benchmark --target Kernels --filter "gemm ($shapes) .*" --format influx --path stdout) >"$csv"; then
    grep -v '^Kernels,' "$csv" | tail -40 >&2
    exit 1
  fi
fi
[ -n "$save" ] && cp "$csv" "$save"

# Influx CSV: target,host,cpu,processors,memory,kernel,metric,unit,test,percentile,value,...
awk -F, '
  $7 == "FLOP/s" && ($10 == "50" || $10 == "50.0") && $9 ~ /^gemm / {
    n = split($9, w, " ")
    shape = w[2] " " w[3]
    variant = w[4]; for (i = 5; i <= n; i++) variant = variant " " w[i]
    if (!(shape in seen)) { seen[shape] = 1; order[++shapes] = shape }
    rate[shape, variant] = $11 / 1e9
  }
  END {
    if (shapes == 0) { print "no gemm FLOP/s results (did the run fail, or match no benchmark?)" > "/dev/stderr"; exit 1 }
    nv = split("mqan-avx512|mqan-avx512 packed|mqan-avx2|mqan-avx2 packed", v, "|")
    printf "%-30s | %8s", "shape (MxNxK kind)", "openblas"
    for (j = 1; j <= nv; j++) printf " | %-18s", v[j]
    printf "\n%-30s | %8s", "", "GFLOP/s"
    for (j = 1; j <= nv; j++) printf " | %-18s", "GFLOP/s (ratio)"
    printf "\n"
    for (i = 1; i <= shapes; i++) {
      s = order[i]
      ob = ((s, "openblas") in rate) ? rate[s, "openblas"] : 0
      printf "%-30s | %8s", s, (ob > 0 ? sprintf("%.1f", ob) : "-")
      for (j = 1; j <= nv; j++) {
        if ((s, v[j]) in rate) {
          r = rate[s, v[j]]
          printf " | %-18s", sprintf("%.1f (%s)", r, (ob > 0 ? sprintf("x%.2f", r / ob) : "-"))
        } else printf " | %-18s", "-"
      }
      printf "\n"
    }
  }' "$csv"
