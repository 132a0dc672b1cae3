#!/usr/bin/env python3
"""Compare `mqan profile` with decaNLP's own MQAN in PyTorch on the same synthetic shapes.

Runs, one process at a time (never two measurements at once; each in a fresh process so that peak
RSS is that measurement's own), `tools/peer/decanlp_peer.py MODE ...` and `mqan profile MODE ...
--json` with the same flags, reads the JSON object each prints as its last line, and prints a
Markdown table: measure | decaNLP | mqan | ratio | target | met.

Measures (the project's targets; --quick shrinks every shape for a smoke test):

  train     training step, B 32 x (Lc 256, Lq 16, La 32), vocab 60,000: tokens/s, mqan >= 6x
  greedy    greedy decoding, B 64 x (128, 16), 32 steps: sentences/s, mqan >= 4x
  beam      mqan's beam search (beam 4), same shapes, vs decaNLP's greedy: sentences/s, >= 1.8x
  latency   greedy decoding, B 1 x (128, 16), 32 steps: median ms, mqan <= 1/5
  rss       peak RSS of the training process (from `train`): mqan <= 1/2

This script only starts processes; it needs no PyTorch itself (the peer runs under --python).
"""

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PEER = os.path.join(HERE, "decanlp_peer.py")
MEASURES = ["train", "greedy", "beam", "latency", "rss"]

# Full-size shapes (the project's targets) and --quick ones (seconds, for checking that it runs).
SHAPES = {
    "full": {
        "train": dict(batch=32, context=256, question=16, answer=32),
        "greedy": dict(batch=64, context=128, question=16, max_output=32),
        "latency": dict(batch=1, context=128, question=16, max_output=32),
    },
    "quick": {
        "train": dict(batch=4, context=32, question=8, answer=8),
        "greedy": dict(batch=4, context=32, question=8, max_output=8),
        "latency": dict(batch=1, context=32, question=8, max_output=8),
    },
}


def flags(shape, common):
    """`mqan profile` flags (decanlp_peer.py takes the same ones)."""
    out = []
    for k, v in list(shape.items()) + list(common.items()):
        out += [f"--{k.replace('_', '-')}", str(v)]
    return out


def run_json(cmd, label, log, env=None):
    """Runs cmd, echoes its output to `log`, returns the JSON object of its last line."""
    print(f"[{label}] $ {' '.join(shlex.quote(c) for c in cmd)}", file=sys.stderr, flush=True)
    t0 = time.monotonic()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       env=None if not env else {**os.environ, **env})
    if log:
        log.write(f"$ {' '.join(shlex.quote(c) for c in cmd)}\n{p.stdout}\n")
        log.flush()
    lines = [l for l in p.stdout.splitlines() if l.strip()]
    if p.returncode != 0 or not lines:
        tail = "\n".join(lines[-20:])
        sys.exit(f"error: [{label}] exited with status {p.returncode}:\n{tail}")
    try:
        obj = json.loads(lines[-1])
    except json.JSONDecodeError:
        sys.exit(f"error: [{label}] did not end with a JSON line:\n" + "\n".join(lines[-10:]))
    print(f"[{label}] {time.monotonic() - t0:.1f} s: step_ms {obj.get('step_ms', float('nan')):.1f}",
          file=sys.stderr, flush=True)
    return obj


def machine():
    """The CPU model (lscpu's `Model name`) and logical CPU count."""
    name = platform.processor() or platform.machine()
    try:
        for line in subprocess.check_output(["lscpu"], text=True, env={**os.environ, "LC_ALL": "C"}).splitlines():
            if line.startswith("Model name:"):
                name = line.split(":", 1)[1].strip()
                break
    except (OSError, subprocess.CalledProcessError):
        pass
    return f"{name}, {os.cpu_count()} logical CPUs"


def git_rev(path):
    try:
        rev = subprocess.check_output(["git", "-C", path, "rev-parse", "--short", "HEAD"], text=True,
                                      stderr=subprocess.DEVNULL).strip()
        dirty = subprocess.run(["git", "-C", path, "diff", "--quiet", "HEAD"], stderr=subprocess.DEVNULL).returncode
        return rev + ("+uncommitted changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def fmt(x, unit):
    if x is None:
        return "-"
    if unit == "MiB":
        return f"{x / 2**20:,.0f} MiB"
    if unit == "ms":
        return f"{x:,.1f} ms"
    return f"{x:,.1f} {unit}" if x < 100 else f"{x:,.0f} {unit}"


def table(res, measures):
    """Rows (measure, decaNLP, mqan, ratio, target, met). ratio = mqan / decaNLP of the row's quantity."""
    rows = []

    def add(name, dec, mq, unit, target, ok):
        ratio = mq / dec if dec and mq is not None else None
        met = "-" if ratio is None or ok is None else ("yes" if ok(ratio) else "no")
        rows.append((name, fmt(dec, unit), fmt(mq, unit), "-" if ratio is None else f"{ratio:.2f}x", target, met))

    if "train" in measures:
        add("training step, tokens/s", res["train"]["decanlp"]["tokens_per_s"], res["train"]["mqan"]["tokens_per_s"],
            "tok/s", ">= 6x", lambda r: r >= 6)
    if "train" in measures:
        d = res["train"]["decanlp"]
        tokens = d["tokens_per_s"] * d["step_ms"]  # tokens per step * 1000
        add("(info) decaNLP forward+backward only (no clip+Adam), tokens/s", tokens / (d["step_ms"] - d["optimizer_ms"]),
            res["train"]["mqan"]["tokens_per_s"], "tok/s", "-", None)
    if "greedy" in measures:
        add("greedy decoding, sentences/s", res["greedy"]["decanlp"]["sentences_per_s"],
            res["greedy"]["mqan"]["sentences_per_s"], "sent/s", ">= 4x", lambda r: r >= 4)
    if "beam" in measures:
        add("mqan beam 4 vs decaNLP greedy, sentences/s", res["greedy"]["decanlp"]["sentences_per_s"],
            res["beam"]["mqan"]["sentences_per_s"], "sent/s", ">= 1.8x", lambda r: r >= 1.8)
    if "latency" in measures:
        add("batch-1 greedy latency", res["latency"]["decanlp"]["step_ms"], res["latency"]["mqan"]["step_ms"],
            "ms", "<= 0.20x", lambda r: r <= 0.2)
    if "rss" in measures:
        add("training peak RSS", res["train"]["decanlp"]["peak_rss_bytes"], res["train"]["mqan"]["peak_rss_bytes"],
            "MiB", "<= 0.50x", lambda r: r <= 0.5)
        d = res["train"]["decanlp"]
        add("(info) training peak RSS, decaNLP's less its `import torch`", d["peak_rss_bytes"] - d["import_rss_bytes"],
            res["train"]["mqan"]["peak_rss_bytes"], "MiB", "-", None)
    return rows


def markdown(rows):
    head = ("measure", "decaNLP", "mqan", "ratio", "target", "met")
    out = ["| " + " | ".join(head) + " |", "| --- | ---: | ---: | ---: | --- | --- |"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--decanlp", required=True,
                    help="a salesforce/decaNLP checkout, or a (bare) git directory of one")
    ap.add_argument("--mqan", default=os.path.join(REPO, ".build", "release", "mqan"),
                    help="the mqan binary (default: .build/release/mqan in the repository root)")
    ap.add_argument("--python", default=sys.executable,
                    help="Python with PyTorch that runs decanlp_peer.py (default: this one)")
    ap.add_argument("--preset", default="default", help="model preset for both (default: decaNLP's defaults)")
    ap.add_argument("--threads", type=int, default=2, help="threads for both (torch.set_num_threads / mqan --threads)")
    ap.add_argument("--steps", type=int, default=3, help="timed runs of the train and greedy/beam measures (3)")
    ap.add_argument("--latency-steps", type=int, default=10, help="timed runs of the batch-1 latency measure (10)")
    ap.add_argument("--vocab", type=int, default=60_000, help="full vocabulary of the random ids (60000)")
    ap.add_argument("--beam", type=int, default=4, help="mqan's beam size for the beam measure (4)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", default=",".join(MEASURES),
                    help=f"comma-separated subset of {','.join(MEASURES)} (rss needs train's runs)")
    ap.add_argument("--quick", action="store_true", help="small shapes and 2 steps: a smoke test, not a benchmark")
    ap.add_argument("--mqan-env", action="append", default=[], metavar="NAME=VALUE",
                    help="set this in mqan's environment only (repeatable), e.g. OPENBLAS_CORETYPE=Prescott to"
                         " stand for a CPU that OpenBLAS does not know")
    ap.add_argument("--mqan-args", default="",
                    help="extra flags for every `mqan profile` run, e.g. '--gemm openblas'")
    ap.add_argument("--json-out", help="also write every raw JSON result and the table's context to this file")
    ap.add_argument("--log", help="write the full output of every run to this file")
    args = ap.parse_args(argv)
    args.measures = [m for m in args.only.split(",") if m]
    bad_env = [e for e in args.mqan_env if "=" not in e]
    if bad_env:
        ap.error(f"--mqan-env takes NAME=VALUE, got {bad_env[0]!r}")
    args.mqan_env = dict(e.split("=", 1) for e in args.mqan_env)
    bad = [m for m in args.measures if m not in MEASURES]
    if bad:
        ap.error(f"unknown measure(s) {','.join(bad)} (choose from {','.join(MEASURES)})")
    if args.quick:
        args.steps, args.latency_steps = 2, 2
    if not os.access(args.mqan, os.X_OK):
        ap.error(f"{args.mqan} is not an executable; build it with `swift build -c release --product mqan`"
                 " or give --mqan")
    return args


def main(argv=None):
    args = parse_args(argv)
    shapes = SHAPES["quick" if args.quick else "full"]
    log = open(args.log, "w") if args.log else None
    base = dict(preset=args.preset, vocab=args.vocab, threads=args.threads, seed=args.seed)
    ms = set(args.measures)
    plan = []  # (key, tool, mode, flags)
    if ms & {"train", "rss"}:
        f = flags(shapes["train"], {**base, "steps": args.steps})
        plan += [("train", "decanlp", "train", f), ("train", "mqan", "train", f)]
    if ms & {"greedy", "beam"}:
        f = flags(shapes["greedy"], {**base, "steps": args.steps})
        plan += [("greedy", "decanlp", "decode", f)]
        if "greedy" in ms:
            plan += [("greedy", "mqan", "decode", f + ["--beam", "1"])]
        if "beam" in ms:
            plan += [("beam", "mqan", "decode", f + ["--beam", str(args.beam)])]
    if "latency" in ms:
        f = flags(shapes["latency"], {**base, "steps": args.latency_steps})
        plan += [("latency", "decanlp", "decode", f), ("latency", "mqan", "decode", f + ["--beam", "1"])]

    res = {}
    for key, tool, mode, f in plan:
        if tool == "decanlp":
            cmd = [args.python, PEER, mode, "--decanlp", args.decanlp] + f
        else:
            cmd = [args.mqan, "profile", mode] + f + shlex.split(args.mqan_args) + ["--json"]
        env = args.mqan_env if tool == "mqan" else None
        res.setdefault(key, {})[tool] = run_json(cmd, f"{key}/{tool}", log, env)

    dec = next(iter(v["decanlp"] for v in res.values() if "decanlp" in v), {})
    ctx = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine(),
        "threads": args.threads,
        "mqan": f"{args.mqan} (repository {git_rev(REPO)})"
                + (f", environment {' '.join(f'{k}={v}' for k, v in args.mqan_env.items())}" if args.mqan_env else "")
                + (f", flags {args.mqan_args}" if args.mqan_args else ""),
        "gemm": next((v["mqan"].get("gemm_path") for v in res.values() if "mqan" in v and "gemm_path" in v["mqan"]),
                     "unknown"),
        "roofline": next((v["mqan"].get("roofline") for v in res.values() if "mqan" in v and v["mqan"].get("roofline")),
                         None),
        "decanlp": f"salesforce/decaNLP {dec.get('decanlp_commit') or 'unknown commit'}, PyTorch {dec.get('torch')},"
                   f" Python {dec.get('python')}",
        "preset": args.preset,
        "mode": "quick (smoke test, not a benchmark)" if args.quick else "full",
    }
    rows = table(res, args.measures)
    t, g, l = shapes["train"], shapes["greedy"], shapes["latency"]
    print()
    print(f"decaNLP MQAN (PyTorch) vs mqan, preset {args.preset}, {ctx['mode']}")
    print()
    for k in ("date", "machine", "threads", "mqan", "decanlp", "gemm"):
        print(f"- {k}: {ctx[k]}")
    if ctx["roofline"]:
        r = ctx["roofline"]
        print(f"- roofs (mqan's calibration, {r.get('threads')} threads): peak {r.get('peak_gflops', 0):.1f} GFLOP/s;"
              f" read L2 {r.get('l2_gbps', 0):.1f}, LLC {r.get('llc_gbps', 0):.1f}, memory {r.get('mem_gbps', 0):.1f} GB/s")
    print(f"- shapes: train B {t['batch']} x ({t['context']}, {t['question']}, {t['answer']}), vocab {args.vocab},"
          f" median of {args.steps}; greedy/beam B {g['batch']} x ({g['context']}, {g['question']}),"
          f" {g['max_output']} steps, median of {args.steps}; latency B 1 x ({l['context']}, {l['question']}),"
          f" {l['max_output']} steps, median of {args.latency_steps}")
    print("- ratio = mqan / decaNLP. decaNLP's training step is train.py's `step`: forward, backward,"
          " clip_grad_norm_(1.0), Adam(0.9, 0.98, 1e-9); mqan's is what `mqan profile train` times."
          " Peak RSS is each process's own (ru_maxrss / VmHWM).")
    print()
    print(markdown(rows))
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump({"context": ctx, "results": res, "table": rows}, fh, indent=1, sort_keys=True)
    if log:
        log.close()


if __name__ == "__main__":
    main()
