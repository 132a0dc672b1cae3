#!/usr/bin/env bash
# Throughput and latency of `mqan serve` against `mqan predict` on the same inputs, on loopback.
#
#   tools/loadgen/bench.sh CHECKPOINT INPUT.jsonl TASK [THREADS] [CONCURRENCY...]
#
# 1. mqan predict over INPUT (batches of 64, sorted by length): sentences/s; then over its first 50
#    lines with --batch-size 1: the mean time per example (batch-1 latency; predict's own timing,
#    without process start and plan compilation).
# 2. mqan serve on free ports, then tools/loadgen/loadgen.py closed loop over JSON-lines at each
#    concurrency (default 1 4 16 64; max(50 x concurrency, lines) requests each, the input cycled:
#    a closed loop's last requests finish at falling concurrency, and at 64 clients that tail is
#    about half a second, which must stay a small share of the run), and over HTTP at the largest;
#    one markdown table row per run. The server gets SIGTERM at the end (exit status shown).
# SERVE_ARGS adds options to mqan serve (e.g. SERVE_ARGS="--max-batch 16").
# Build first: swift build -c release --product mqan. Run it under the shared lock on a shared machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
ck=${1:?checkpoint}; input=${2:?input jsonl}; task=${3:?task}; threads=${4:-2}
shift $(( $# < 4 ? $# : 4 ))
levels=("$@"); [ ${#levels[@]} -eq 0 ] && levels=(1 4 16 64)
mqan=.build/release/mqan
tmp=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; rm -rf "$tmp"' EXIT
lines=$(grep -c . "$input")

"$mqan" predict --checkpoint "$ck" --data "$input" --tasks "$task" --decoder consistent --threads "$threads" \
  --out "$tmp/predict.jsonl" 2> "$tmp/predict.err"
predict_rate=$(grep -o '[0-9.]* sentences/s' "$tmp/predict.err" | cut -d' ' -f1)
head -50 "$input" > "$tmp/first50.jsonl"
"$mqan" predict --checkpoint "$ck" --data "$tmp/first50.jsonl" --tasks "$task" --decoder consistent \
  --threads "$threads" --batch-size 1 --out "$tmp/one.jsonl" 2> "$tmp/one.err"
batch1_ms=$(python3 -c "import re,sys; s=float(re.search(r'in ([0-9.]+)s', open(sys.argv[1]).read()).group(1)); print(round(s * 1000 / 50, 1))" "$tmp/one.err")
echo "mqan predict: $predict_rate sentences/s ($lines inputs, batches of 64); batch-1: $batch1_ms ms per example (its first 50 inputs)"

# shellcheck disable=SC2086
"$mqan" serve --checkpoint "$ck" --threads "$threads" --port 0 --http-port 0 ${SERVE_ARGS:-} 2> "$tmp/serve.err" &
server=$!
for _ in $(seq 300); do
  grep -q "listening http" "$tmp/serve.err" 2>/dev/null && grep -q "listening json-lines" "$tmp/serve.err" && break
  sleep 0.1
done
lport=$(grep "listening json-lines" "$tmp/serve.err" | sed 's/.*://')
hport=$(grep "listening http" "$tmp/serve.err" | sed 's/.*://')

echo "| protocol | clients | requests | throughput (req/s) | vs predict | p50 ms | p90 ms | p99 ms | errors |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
row() {
  local protocol=$1 port=$2 c=$3
  local n=$(( 50 * c > lines ? 50 * c : lines ))
  python3 tools/loadgen/loadgen.py --input "$input" --task "$task" --protocol "$protocol" --port "$port" \
    --connections "$c" --requests "$n" --json > "$tmp/row.json" || true
  python3 - "$tmp/row.json" "$predict_rate" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1])); p = float(sys.argv[2])
print(f"| {r['protocol']} | {r['connections']} | {r['requests']} | {r['throughput']} | {r['throughput'] / p:.2f}x | "
      f"{r['p50_ms']} | {r['p90_ms']} | {r['p99_ms']} | {sum(r['errors'].values())} |")
EOF
}
for c in "${levels[@]}"; do row lines "$lport" "$c"; done
row http "$hport" "${levels[-1]}"
kill -TERM $server
wait $server && echo "mqan serve: exit status 0 after SIGTERM" || echo "mqan serve: exit status $? after SIGTERM"
