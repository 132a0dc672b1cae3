#!/usr/bin/env bash
# Data-parallel speedup on one host: N ranks x T threads against 1 process x T threads, same
# global batch (--batch-tokens), same seed, dropout off; prints tokens/s (the global batch's padded
# tokens over the step wall times of steps 2..S, from log.jsonl) and the largest relative loss gap.
#   tools/mpi_speedup.sh [--ranks N] [--threads T] [--steps S] [--preset P] [--batch-tokens B] [--mqan BIN]
# Needs a release build (swift build -c release --product mqan) and mpirun (openmpi-bin).
set -euo pipefail
cd "$(dirname "$0")/.."
ranks=2 threads=1 steps=12 preset=default tokens=9000 bin=.build/release/mqan
while [ $# -gt 0 ]; do
  case "$1" in
    --ranks) ranks=$2; shift 2 ;; --threads) threads=$2; shift 2 ;; --steps) steps=$2; shift 2 ;;
    --preset) preset=$2; shift 2 ;; --batch-tokens) tokens=$2; shift 2 ;; --mqan) bin=$2; shift 2 ;;
    -h|--help) sed -n 2,6p "$0"; exit 0 ;;
    *) echo "error: unknown option $1 (see $0 --help)" >&2; exit 2 ;;
  esac
done
[ -x "$bin" ] || { echo "error: $bin not found (swift build -c release --product mqan)" >&2; exit 1; }
work=$(mktemp -d /tmp/mqan-speedup.XXXXXX)
trap '[ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"' EXIT
args=(train --data Tests/MQANTests/Fixtures/data --tasks sst,squad,multi30k.en.de --preset "$preset"
      --train-embeddings --threads "$threads" --batch-tokens "$tokens" --dropout 0 --steps "$steps"
      --val-every 100000 --save-every 100000 --val-examples 1 --max-output 3)
echo "1 process x $threads thread(s): ${bin} ${args[*]}"
"$bin" "${args[@]}" --save "$work/one" > "$work/one.out"
echo "$ranks ranks x $threads thread(s): mpirun -np $ranks ${bin} ${args[*]}"
mpirun --allow-run-as-root --oversubscribe -np "$ranks" "$bin" "${args[@]}" --save "$work/many" > "$work/many.out"
python3 - "$work/one/log.jsonl" "$work/many/log.jsonl" "$ranks" <<'PY'
import json, sys
def rows(p): return [r for r in map(json.loads, open(p)) if "loss" in r]
a, b = rows(sys.argv[1]), rows(sys.argv[2])
def rate(rs):
    rs = rs[1:]  # step 1 pays for first-touch allocation
    return sum(r["tokens"] for r in rs) / sum(r["step_s"] for r in rs)
steady = b[1:]
mean = lambda k, rs: sum(r[k] for r in rs) / len(rs)
print(f"step time (steps 2..): 1 process {mean('step_s', a[1:]):.3f} s, {sys.argv[3]} ranks {mean('step_s', steady):.3f} s, "
      + (f"of which the gradient sum left after the backward pass (overlap on) {mean('wait_s', steady):.3f} s"
         if steady[-1].get("overlap") else
         f"of which waiting for the slowest share {mean('wait_s', steady):.3f} s and the gradient sum {mean('exchange_s', steady):.3f} s"))
gap = max(abs(x["loss"] - y["loss"]) / abs(x["loss"]) for x, y in zip(a, b))
ra, rb = rate(a), rate(b)
print(f"1 process: {ra:.0f} tokens/s   {sys.argv[3]} ranks: {rb:.0f} tokens/s   speedup {rb / ra:.2f}x   "
      f"largest relative loss gap {gap:.1e} over {len(a)} steps")
PY
