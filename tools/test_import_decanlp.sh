#!/usr/bin/env bash
# The decaNLP import test, end to end, in one command (not part of `swift test`, which never needs
# PyTorch):
#
#   tools/test_import_decanlp.sh --decanlp DIR --data DIR --vectors FILE
#
#  1. decaNLP's own code makes a run: config.json from its arguments.py, a Field whose vocabulary
#     comes from the first --train-lines of sst and multi30k.en.de train.jsonl (word vectors: made-up
#     4-dimensional CharNGram vectors, then --vectors, decaNLP's [CharNGram ; GloVe] layout), a
#     small MultitaskQuestionAnsweringNetwork trained --steps steps with train.py's step, saved as
#     train.py saves it (iteration_N.pth);
#  2. tools/import_decanlp.py converts it;
#  3. mqan predict answers the first --examples lines of each task's validation.jsonl, and decaNLP's
#     predict.py path (its vocabulary extension, iterator and greedy decoding) answers them too;
#  4. the answers must be identical and the scores within 1e-4 (decaNLP's greedy returns no score:
#     the test sums log P of the tokens it chose, from decaNLP's own probabilities);
#  5. importing the run with "cove": true in its config.json must fail with one line naming CoVe.
#
# Needs: Python 3 with torch numpy safetensors revtok six tqdm requests (PYTHON=... picks the
# interpreter; `pip install torch numpy safetensors revtok six tqdm requests`), a checkout of
# salesforce/decaNLP (--decanlp), decaNLP-format data with TASK/train.jsonl and TASK/validation.jsonl
# (--data; the repository's Tests/MQANTests/Fixtures/data has 50 validation lines a task, so use
# --examples 50 there) and GloVe-format word vectors (--vectors). Builds mqan (debug) unless --mqan.
#
# --write-fixture DIR instead makes the tiny fixture of Tests/MQANTests/Fixtures/decanlp (see its README),
# with made-up 8-dimensional word vectors (--vectors is not needed then).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
PYTHON="${PYTHON:-python3}"
decanlp="" data="" vectors="" mqan="" work="" fixture=""
tasks="sst,multi30k.en.de" train_lines=2000 examples=200 steps=300
model_args=()

usage() { sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --decanlp) decanlp="$2"; shift 2 ;;
    --data) data="$2"; shift 2 ;;
    --vectors) vectors="$2"; shift 2 ;;
    --mqan) mqan="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    --examples) examples="$2"; shift 2 ;;
    --train-lines) train_lines="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --write-fixture) fixture="$2"; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "error: unknown option $1" >&2; usage 2 >&2 ;;
  esac
done
[ -n "$decanlp" ] && [ -n "$data" ] || { echo "error: --decanlp and --data are required" >&2; exit 2; }
[ -n "$vectors" ] || [ -n "$fixture" ] || { echo "error: --vectors is required (GloVe-format word vectors)" >&2; exit 2; }
[ -d "$decanlp/text/torchtext" ] || { echo "error: --decanlp $decanlp is not a decaNLP checkout (no text/torchtext)" >&2; exit 2; }
"$PYTHON" -c "import torch, numpy, safetensors, revtok, six, tqdm, requests" 2>/dev/null || {
  echo "error: $PYTHON lacks a package: pip install torch numpy safetensors revtok six tqdm requests" >&2; exit 2; }

if [ -z "$mqan" ]; then
  (cd "$root" && swift build --product mqan >/dev/null)
  mqan="$(cd "$root" && swift build --show-bin-path)/mqan"
fi
if [ -z "$work" ]; then work="$(mktemp -d "${TMPDIR:-/tmp}/mqan-decanlp-import.XXXXXX")"; fi
rm -rf "$work/run" && mkdir -p "$work/run"
helper=("$PYTHON" "$here/test_import_decanlp.py")

if [ -n "$fixture" ]; then  # tiny: small enough to commit (see Tests/MQANTests/Fixtures/decanlp/README.md)
  train_lines=40 steps=80
  model_args=(--dimension 16 --heads 2 --hidden 16 --layers 1 --generative-vocab 150 --max-output 16 --val-batch-size 16)
fi
echo "== work folder: $work"
"${helper[@]}" sample --data "$data" --tasks "$tasks" --train-lines "$train_lines" --val-lines "$examples" --out "$work/run/data"
charngram=() layout=() mqan_vectors="$vectors"
if [ -n "$fixture" ]; then  # made-up vectors: the committed fixture holds no real GloVe values
  vectors="$work/made-up-vectors.txt" mqan_vectors="$work/made-up-vectors.txt"
  "${helper[@]}" vectors --data "$work/run/data" --tasks "$tasks" --out "$vectors"
else  # decaNLP's layout, [CharNGram ; GloVe], with made-up 4-dimensional char n-gram vectors
  "${helper[@]}" vectors --charngram --dim 4 --coverage 0.6 --data "$work/run/data" --tasks "$tasks" --out "$work/charNgram.txt"
  charngram=(--charngram "$work/charNgram.txt")
  layout=(--vectors "charngram:4,glove:$(head -1 "$vectors" | awk '{print NF - 1}')")
  mqan_vectors="$work/charNgram.txt,$vectors"
fi
echo "== 1. decaNLP: train $steps steps and save as train.py saves"
"${helper[@]}" train --decanlp "$decanlp" --run "$work/run" --tasks "$tasks" --vectors "$vectors" --steps "$steps" \
  ${charngram[@]+"${charngram[@]}"} ${model_args[@]+"${model_args[@]}"} 2> "$work/train.log" || { tail -20 "$work/train.log" >&2; exit 1; }
pth="$work/run/iteration_$steps.pth"
echo "== 2. import"
"$PYTHON" "$here/import_decanlp.py" "$pth" --decanlp "$decanlp" -o "$work/model.safetensors" ${layout[@]+"${layout[@]}"}
echo "== 3. answers: mqan predict, then decaNLP's predict.py path"
"$mqan" predict --checkpoint "$work/model.safetensors" --data "$work/run/data" --tasks "$tasks" \
  --vectors "$mqan_vectors" --out "$work/mqan.jsonl"
subset=()
[ -n "$fixture" ] && subset=(--vectors-subset "$work/vectors.txt" --appended "$work/appended.json")
"${helper[@]}" predict --decanlp "$decanlp" --checkpoint "$pth" --data "$work/run/data" --tasks "$tasks" \
  --vectors "$vectors" ${charngram[@]+"${charngram[@]}"} --out "$work/decanlp.jsonl" ${subset[@]+"${subset[@]}"} 2> "$work/predict.log" \
  || { tail -20 "$work/predict.log" >&2; exit 1; }

passed=0 failed=0
echo "== 4. compare"
if "${helper[@]}" compare --mqan "$work/mqan.jsonl" --decanlp "$work/decanlp.jsonl" --tolerance 1e-4; then
  passed=$((passed + 1)); else failed=$((failed + 1)); fi

echo "== 5. refusal: a run with CoVe"
mkdir -p "$work/cove"
"$PYTHON" - "$work/run/config.json" "$work/cove/config.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1])); c["cove"] = True; json.dump(c, open(sys.argv[2], "w"), indent=2)
EOF
set +e
"$PYTHON" "$here/import_decanlp.py" "$pth" --config "$work/cove/config.json" --decanlp "$decanlp" \
  -o "$work/cove/model.safetensors" > "$work/cove/stdout" 2> "$work/cove/stderr"
status=$?
set -e
cat "$work/cove/stderr"
if [ "$status" -ne 0 ] && [ "$(wc -l < "$work/cove/stderr")" -eq 1 ] && grep -q "CoVe" "$work/cove/stderr" \
   && [ ! -e "$work/cove/model.safetensors" ]; then
  echo "ok refusal: exit $status, one line naming CoVe, nothing written"; passed=$((passed + 1))
else
  echo "FAIL refusal: exit $status, $(wc -l < "$work/cove/stderr") lines on stderr"; failed=$((failed + 1))
fi

if [ -n "$fixture" ]; then
  mkdir -p "$fixture"
  cp "$work/model.safetensors" "$fixture/model.safetensors"
  cp "$work/vectors.txt" "$fixture/vectors.txt"
  cp "$work/appended.json" "$fixture/appended.json"
  "$PYTHON" - "$work/decanlp.jsonl" "$fixture/expected.jsonl" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
with open(sys.argv[2], "w", encoding="utf-8") as f:
    f.write("".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows))
EOF
  echo "wrote $fixture: $(du -k "$fixture/model.safetensors" | cut -f1) kB model, $(wc -l < "$fixture/expected.jsonl") expected answers"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
