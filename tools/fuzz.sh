#!/usr/bin/env bash
# Builds one libFuzzer target of Fuzz/ (with AddressSanitizer) and runs it on a seed corpus of the
# repository's own files for SECONDS seconds.
#
#   tools/fuzz.sh TARGET SECONDS [libFuzzer options...]
#   tools/fuzz.sh FuzzIR 600
#   tools/fuzz.sh FuzzIR 0 CRASH_FILE          # re-run one input (SECONDS 0: no time limit)
#
# TARGETs: FuzzSafetensors, FuzzCheckpoint, FuzzPlan, FuzzIR, FuzzJSONL, FuzzGloVe (one reader
# each, see Fuzz/Package.swift). Every crash, hang (-timeout=10) or run over -rss_limit_mb=2048
# is a bug: libFuzzer stops and writes the input to $FUZZ_DIR/TARGET/artifacts/.
#
# The corpus lives in a scratch folder, never in the repository: FUZZ_DIR (default
# ${TMPDIR:-/tmp}/mqan-fuzz)/TARGET/corpus, seeded on every run with copies of the files below
# (IR goldens, plans `mqan compile -o` writes, fixtures, data samples, a checkpoint that
# `mqan train` writes, Fuzz/Seeds/).
# The build goes to .build-fuzz (`--scratch-path`), apart from the normal .build.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ $# -lt 2 ]; then sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2; fi
target="$1" seconds="$2"; shift 2
fuzz_dir="${FUZZ_DIR:-${TMPDIR:-/tmp}/mqan-fuzz}"
work="$fuzz_dir/$target"
corpus="$work/corpus" seeds="$work/seeds" artifacts="$work/artifacts/"
fixtures="$root/Tests/MQANTests/Fixtures"
dict=""

# The fuzz package shares the root's pinned dependencies (an offline build resolves from them).
[ -f "$root/Fuzz/Package.resolved" ] || { [ -f "$root/Package.resolved" ] && cp "$root/Package.resolved" "$root/Fuzz/"; }
echo "building $target (debug, -sanitize=fuzzer,address) in .build-fuzz ..." >&2
swift build --package-path "$root/Fuzz" --scratch-path "$root/.build-fuzz" -c debug \
  --sanitize=fuzzer --sanitize=address --product "$target" 2>&1 \
  | grep -vE "Cannot export local symbol|^\[[0-9]+/[0-9]+\] (Compiling|Emitting|Write)" >&2
binary="$root/.build-fuzz/debug/$target"

mqan="$root/.build/debug/mqan"
need_mqan() { [ -x "$mqan" ] || swift build --package-path "$root" --product mqan >&2; }

# IR/README.md's example graph.
example_ir() { awk '/^## A graph/{f=1} f&&/^```$/{if(n++)exit; next} f&&n' "$root/IR/README.md"; }

# Plan files as `mqan compile -o` writes them: the tiny preset's three plans and the example's.
plan_seeds() {
  need_mqan
  for p in train encode decode-step; do "$mqan" compile --preset tiny --plan "$p" -o "$seeds/tiny.$p.json" >/dev/null; done
  example_ir > "$work/example.mqir"
  "$mqan" compile "$work/example.mqir" -o "$seeds/example.json" >/dev/null
}

# A small checkpoint of `mqan train` (tiny preset, two steps on the SST sample), made once.
checkpoint_seeds() {
  local dir="$fuzz_dir/checkpoint"
  if [ ! -f "$dir/latest.safetensors" ]; then
    need_mqan
    rm -rf "$dir"
    "$mqan" train --data "$fixtures/data" --tasks sst --preset tiny --steps 2 --val-every 2 --train-embeddings \
      --val-examples 4 --batch-tokens 400 --save "$dir" >&2
  fi
  shrink "$dir/latest.safetensors" "$seeds/checkpoint.meta.safetensors" 0
  shrink "$dir/latest.safetensors" "$seeds/checkpoint.few.safetensors" 3
}

# A safetensors file cut down to its metadata and its first KEEP tensors (with their Adam
# moments, for checkpoints): whole files of hundreds of KB make each run slow.
shrink() {
  python3 - "$1" "$2" "$3" <<'PY'
import json, struct, sys
src, dst, keep = sys.argv[1], sys.argv[2], int(sys.argv[3])
raw = open(src, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header, data = json.loads(raw[8:8 + n]), raw[8 + n:]
names = [k for k in header if k != "__metadata__" and not k.startswith("adam.")][:keep]
names += [f"adam.{m}.{k}" for m in "mv" for k in names if f"adam.{m}.{k}" in header]
out, blob = {"__metadata__": header["__metadata__"]} if "__metadata__" in header else {}, b""
for k in names:
    b, e = header[k]["data_offsets"]
    out[k] = dict(header[k], data_offsets=[len(blob), len(blob) + e - b])
    blob += data[b:e]
text = json.dumps(out).encode()
open(dst, "wb").write(struct.pack("<Q", len(text)) + text + blob)
PY
}

rm -rf "$seeds"
mkdir -p "$corpus" "$seeds" "$artifacts"
case "$target" in
  FuzzSafetensors) for f in "$fixtures"/*.safetensors; do shrink "$f" "$seeds/$(basename "$f")" 6; done
                   checkpoint_seeds ;;
  FuzzCheckpoint) checkpoint_seeds; export MQAN_FUZZ_DATA="$fixtures/data"; dict=json.dict ;;
  FuzzPlan) plan_seeds; dict=json.dict ;;
  FuzzIR) cp "$root"/IR/*.mqir "$seeds/"; example_ir > "$seeds/example.mqir"; dict=mqir.dict ;;
  FuzzJSONL) for f in "$fixtures"/data/*/*.jsonl; do cp "$f" "$seeds/$(basename "$(dirname "$f")").$(basename "$f")"; done
             dict=json.dict ;;
  FuzzGloVe) ;;
  *) echo "unknown target $target" >&2; exit 2 ;;
esac
[ -d "$root/Fuzz/Seeds/$target" ] && cp "$root/Fuzz/Seeds/$target"/* "$seeds/"

# A trap reports through libFuzzer's handler (with the input saved), not Swift's backtracer.
export SWIFT_BACKTRACE="${SWIFT_BACKTRACE:-enable=no}"
options=(-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "-artifact_prefix=$artifacts")
[ "$seconds" -gt 0 ] && options+=("-max_total_time=$seconds")
[ -n "$dict" ] && options+=("-dict=$root/Fuzz/Dictionaries/$dict")
if [ $# -gt 0 ] && [ -f "${!#}" ]; then
  exec "$binary" "${options[@]}" "$@"   # re-run given inputs
fi
exec "$binary" "${options[@]}" "$@" "$corpus" "$seeds"
