#!/usr/bin/env python3
"""Time decaNLP's own MQAN (PyTorch, CPU) on the synthetic shapes of `mqan profile`.

The model is decaNLP's `MultitaskQuestionAnsweringNetwork`, imported unmodified from the checkout
given with --decanlp (models/multitask_question_answering_network.py and models/common.py), built
with decaNLP's arguments for the chosen preset and random (PyTorch default) initialisation. The
batch is made like `EncodedBatch.synthetic` in Sources/MQAN/Batch.swift: every row at full length,
`<init> w1 .. wn <eos>` with the words drawn uniformly from the non-special ids 4..vocab-1, so
that ids >= generative_vocab are OOV words that decaNLP numbers per batch (V + k, k in order of
first appearance over context, question, answer).

Modes (the same flags as `mqan profile`, so both tools can be given one argument list):

  train   one training step as decaNLP's train.py `step` does it: model.train(), opt.zero_grad(),
          loss = model(batch) (dropout on, decaNLP's ratios), loss.backward(), lr set,
          clip_grad_norm_(params, 1.0), Adam(betas=(0.9, 0.98), eps=1e-9).step(), loss.item().
          Reports tokens/s = B * (Lc + Lq + La) / median step time.
  decode  decaNLP's inference path: model.eval(), torch.no_grad(), model(batch) = encoder +
          `greedy` with max_output_length = --max-output. Every step runs (see --allow-early-stop).
          Reports sentences/s = B / median time.

One warm-up run, then --steps timed runs; the median is reported. The last line of output is one
JSON object with the same keys as `mqan profile --json` (step_ms, step_ms_min, step_ms_max,
tokens_per_s or sentences_per_s, peak_rss_bytes, threads) plus a few of our own. peak_rss_bytes is
this process's ru_maxrss, so run one measurement per process (tools/peer/compare.py does);
import_rss_bytes is ru_maxrss right after `import torch`.
"""

import argparse
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import types

# decaNLP's special tokens, in the order its torchtext fork puts them at the start of the vocabulary.
SPECIALS = ["<unk>", "<pad>", "<init>", "<eos>"]
UNK, PAD, INIT, EOS = 0, 1, 2, 3

# The presets of Sources/MQAN/ModelConfig.swift (`mqan --preset`), with decaNLP's argument names.
PRESETS = {
    "default": dict(dimension=200, transformer_heads=3, transformer_hidden=150, transformer_layers=2,
                    generative_vocab=50_000, embedding_dim=400),
    "small": dict(dimension=32, transformer_heads=4, transformer_hidden=24, transformer_layers=2,
                  generative_vocab=200, embedding_dim=16),
    "tiny": dict(dimension=20, transformer_heads=3, transformer_hidden=12, transformer_layers=2,
                 generative_vocab=30, embedding_dim=10),
}

# Small shapes for checking that everything runs (not for numbers).
QUICK = dict(batch=4, context=32, question=8, answer=8, max_output=8, steps=2)


# --------------------------------------------------------------------------------------------
# Loading decaNLP's model code without editing it (the approach of tools/fixtures/export_fixture.py).

def resolve_checkout(path):
    """Returns (directory with models/, commit or None, temporary directory to delete or None).

    `path` may be a decaNLP checkout or a bare git directory (e.g. a mirror); the latter is
    exported with `git archive HEAD` into a temporary directory."""
    path = os.path.abspath(path)
    if os.path.isfile(os.path.join(path, "models", "multitask_question_answering_network.py")):
        commit = None
        try:
            commit = subprocess.check_output(["git", "-C", path, "rev-parse", "HEAD"],
                                             stderr=subprocess.DEVNULL, text=True).strip()
        except (OSError, subprocess.CalledProcessError):
            pass
        return path, commit, None
    if os.path.isfile(os.path.join(path, "HEAD")) and os.path.isdir(os.path.join(path, "objects")):
        tmp = tempfile.mkdtemp(prefix="decanlp-")
        try:
            commit = subprocess.check_output(["git", "--git-dir", path, "rev-parse", "HEAD"], text=True).strip()
            archive = subprocess.Popen(["git", "--git-dir", path, "archive", "HEAD", "models"], stdout=subprocess.PIPE)
            subprocess.check_call(["tar", "-x", "-C", tmp], stdin=archive.stdout)
            if archive.wait() != 0:
                raise subprocess.CalledProcessError(archive.returncode, "git archive")
        except (OSError, subprocess.CalledProcessError) as e:
            shutil.rmtree(tmp, ignore_errors=True)
            sys.exit(f"error: cannot export models/ from the git directory {path}: {e}")
        return tmp, commit, tmp
    sys.exit(f"error: {path} is neither a decaNLP checkout (models/multitask_question_answering_network.py)"
             " nor a git directory")


def load_decanlp(decanlp_dir):
    """Imports decaNLP's models/multitask_question_answering_network.py, unmodified.

    Three import-time shims, none of which touches decaNLP's files:
      * `util`: the model file imports only `get_trainable_params` (util.py itself imports
        decaNLP's torchtext fork); the stub is that one-line function.
      * `cove`: `from cove import MTLSTM` runs at import time; CoVe is off, the class is never built.
      * `models`: a bare package over decaNLP's models/ directory, so that models/__init__.py
        (which imports the three other model families) does not run.
    """
    import importlib

    util = types.ModuleType("util")
    util.get_trainable_params = lambda model: list(filter(lambda p: p.requires_grad, model.parameters()))
    sys.modules["util"] = util

    cove = types.ModuleType("cove")

    class MTLSTM:  # a stub: CoVe is off
        def __init__(self, *a, **k):
            raise RuntimeError("CoVe is not available here (cove=False)")

    cove.MTLSTM = MTLSTM
    sys.modules["cove"] = cove

    pkg = types.ModuleType("models")
    pkg.__path__ = [os.path.join(decanlp_dir, "models")]
    pkg.__package__ = "models"
    sys.modules["models"] = pkg
    return importlib.import_module("models.multitask_question_answering_network")


# --------------------------------------------------------------------------------------------
# A minimal stand-in for decaNLP's torchtext field and batch.

class FakeVocab:
    """What MQAN reads from `field.vocab`: len(), stoi of the special tokens, the word vectors."""

    def __init__(self, size, vectors):
        self.size = size
        self.stoi = {w: i for i, w in enumerate(SPECIALS)}
        self.vectors = vectors

    def __len__(self):
        return self.size


class FakeField:
    """What MQAN reads from the field: vocab, pad_token and decoder_stoi of <pad> and <eos>.

    The decoder vocabulary is the first V words of the full one (train.py), so a word's limited id
    is its full id when that is below V. `eos` is the id greedy decoding stops at; -1 (never
    predicted) makes every one of the max_output_length steps run, as `mqan profile decode` does."""

    def __init__(self, vocab, eos=EOS):
        self.vocab = vocab
        self.unk_token, self.pad_token, self.init_token, self.eos_token = SPECIALS
        self.decoder_stoi = {"<unk>": UNK, "<pad>": PAD, "<init>": INIT, "<eos>": eos}


class FakeBatch:
    """The attributes MultitaskQuestionAnsweringNetwork.forward reads from a decaNLP batch."""


def synthetic_batch(torch, batch, lengths, vocab, generative_vocab, seed):
    """Random full-length rows `<init> w.. <eos>` (words uniform over ids 4..vocab-1), like
    EncodedBatch.synthetic, with decaNLP's limited ids and per-batch OOV numbering
    (Batch/Field.numericalize: field by field, row by row, first appearance)."""
    g = torch.Generator().manual_seed(seed)
    full = {}
    for name in ("context", "question", "answer"):
        L = lengths[name]
        words = torch.randint(len(SPECIALS), max(vocab, len(SPECIALS) + 1), (batch, max(L - 2, 0)), generator=g)
        full[name] = torch.cat([torch.full((batch, 1), INIT), words, torch.full((batch, 1), EOS)], 1).long()

    V = generative_vocab
    flat = torch.cat([full[n].reshape(-1) for n in ("context", "question", "answer")])
    oov_positions = (flat >= V).nonzero().squeeze(1)
    oov_ids = flat[oov_positions]
    first = {}
    for i in oov_ids.tolist():  # dict insertion order = order of first appearance
        if i not in first:
            first[i] = V + len(first)
    lim_flat = flat.clone()
    if len(first):
        lut = torch.tensor(list(first.keys())), torch.tensor(list(first.values()))
        order = torch.argsort(lut[0])
        keys, vals = lut[0][order], lut[1][order]
        lim_flat[oov_positions] = vals[torch.searchsorted(keys, oov_ids)]

    b = FakeBatch()
    offset = 0
    for name in ("context", "question", "answer"):
        n = full[name].numel()
        setattr(b, name, full[name])
        setattr(b, f"{name}_limited", lim_flat[offset:offset + n].view_as(full[name]))
        setattr(b, f"{name}_lengths", [lengths[name]] * batch)
        setattr(b, f"{name}_elmo", None)  # ELMo is off; forward never reads it
        offset += n
    # decaNLP keys oov_to_limited_idx by word; MQAN only takes its len(). The limited -> full map
    # is a dict as in decaNLP (greedy calls it per predicted id through Tensor.apply_).
    b.oov_to_limited_idx = {f"oov{full_id}": lim for full_id, lim in first.items()}
    b.limited_idx_to_full_idx = {i: i for i in range(V)}
    b.limited_idx_to_full_idx.update({lim: full_id for full_id, lim in first.items()})
    return b


def build_model(mqan, torch, cfg, vocab, max_output, eos, seed):
    torch.manual_seed(seed)
    vectors = torch.rand(vocab, cfg["embedding_dim"]) - 0.5  # like EncodedBatch.randomEmbeddings
    field = FakeField(FakeVocab(vocab, vectors), eos=eos)
    args = argparse.Namespace(  # decaNLP's arguments.py defaults, CoVe and ELMo off
        dimension=cfg["dimension"], transformer_heads=cfg["transformer_heads"],
        transformer_hidden=cfg["transformer_hidden"], transformer_layers=cfg["transformer_layers"],
        rnn_layers=1, dropout_ratio=0.2, max_generative_vocab=cfg["generative_vocab"],
        max_output_length=max_output, glove_and_char=True, cove=False, intermediate_cove=False, elmo=[-1],
    )
    model = mqan.MultitaskQuestionAnsweringNetwork(field, args)
    model.params = list(filter(lambda p: p.requires_grad, model.parameters()))  # train.py init_model
    return model


# --------------------------------------------------------------------------------------------

def transformer_lr(i, dimension, warmup=800):
    """train.py get_learning_rate (Adam, transformer_lr on): the lr of iteration i."""
    return 1. / math.sqrt(dimension) * min(1 / math.sqrt(i), i / (warmup * math.sqrt(warmup)))


def time_train(torch, model, batch, steps, dimension):
    """train.py `step` with decaNLP's defaults (transformer_lr, grad_clip 1.0, Adam 0.9/0.98/1e-9)."""
    opt = torch.optim.Adam(model.params, betas=(0.9, 0.98), eps=1e-9)  # train.py init_opt
    grad_clip = 1.0
    totals, parts, losses = [], [], []
    for i in range(1, steps + 2):
        t0 = time.perf_counter()
        model.train()
        opt.zero_grad()
        loss, _ = model(batch)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        opt.param_groups[0]["lr"] = transformer_lr(i, dimension)
        torch.nn.utils.clip_grad_norm_(model.params, grad_clip)
        opt.step()
        value = loss.item()
        t3 = time.perf_counter()
        ms = (t3 - t0) * 1e3
        print(f"{'warm-up' if i == 1 else 'step'} {i - 1}: {ms:.1f} ms (forward {1e3 * (t1 - t0):.1f},"
              f" backward {1e3 * (t2 - t1):.1f}, clip+adam {1e3 * (t3 - t2):.1f}), loss {value:.4f}", flush=True)
        if i > 1:
            totals.append(ms)
            parts.append((1e3 * (t1 - t0), 1e3 * (t2 - t1), 1e3 * (t3 - t2)))
            losses.append(value)
    extra = {
        "forward_ms": statistics.median(p[0] for p in parts),
        "backward_ms": statistics.median(p[1] for p in parts),
        "optimizer_ms": statistics.median(p[2] for p in parts),
        "loss": losses[-1],
    }
    return totals, extra


def time_decode(torch, model, batch, steps, max_output):
    """decaNLP's inference: eval mode, no_grad, model(batch) -> (None, greedy output ids)."""
    calls = []
    hook = model.dual_ptr_rnn_decoder.register_forward_hook(lambda *_: calls.append(1))
    totals, runs = [], []
    model.eval()
    for i in range(steps + 1):
        calls.clear()
        t0 = time.perf_counter()
        with torch.no_grad():
            loss, outs = model(batch)
        ms = (time.perf_counter() - t0) * 1e3
        assert loss is None and outs.shape == (batch.context.shape[0], max_output)
        print(f"{'warm-up' if i == 0 else 'run'} {i}: {ms:.1f} ms, {len(calls)} decoder steps", flush=True)
        if i > 0:
            totals.append(ms)
            runs.append(len(calls))
    hook.remove()
    return totals, {"decoder_steps": min(runs)}


def peak_rss_bytes():
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if sys.platform == "darwin" else r * 1024  # Linux reports KiB


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["train", "decode"], help="what to time (as `mqan profile MODE`)")
    ap.add_argument("--decanlp", required=True,
                    help="a salesforce/decaNLP checkout, or a (bare) git directory of one (exported to a temp dir)")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="default", help="model size, as `mqan --preset`")
    ap.add_argument("--batch", type=int, help="batch size (train 32, decode 64)")
    ap.add_argument("--context", type=int, help="context length, counting <init> and <eos> (train 256, decode 128)")
    ap.add_argument("--question", type=int, default=16, help="question length (16)")
    ap.add_argument("--answer", type=int, default=32, help="answer length (train only; 32)")
    ap.add_argument("--vocab", type=int, default=60_000, help="full vocabulary the random ids come from (60000)")
    ap.add_argument("--steps", type=int, default=3, help="timed runs after one warm-up (3)")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (2)")
    ap.add_argument("--max-output", type=int, default=32, help="decode: max_output_length (32)")
    ap.add_argument("--beam", type=int, default=1, help="accepted for symmetry with mqan; decaNLP only has greedy (1)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--allow-early-stop", action="store_true",
                    help="decode: keep decaNLP's <eos> id, so greedy may stop before --max-output steps"
                         " (default: <eos> is never matched and all steps run, as in mqan profile decode)")
    ap.add_argument("--quick", action="store_true",
                    help="small shapes for a smoke test: " + ", ".join(f"{k}={v}" for k, v in QUICK.items()))
    ap.add_argument("--json", action="store_true", help="accepted for symmetry with mqan; the JSON line is always printed")
    args = ap.parse_args(argv)
    if args.quick:
        for k, v in QUICK.items():
            setattr(args, k, v)
    if args.batch is None:
        args.batch = 32 if args.mode == "train" else 64
    if args.context is None:
        args.context = 256 if args.mode == "train" else 128
    if args.mode == "decode":
        args.answer = 2  # as mqan profile decode: the answer is `<init> <eos>` and unused
    if args.beam != 1:
        ap.error("decaNLP has no beam search; use --beam 1")
    for k in ("batch", "steps", "threads", "max_output"):
        if getattr(args, k) < 1:
            ap.error(f"--{k.replace('_', '-')} must be >= 1")
    for k in ("context", "question", "answer"):
        if getattr(args, k) < 2:
            ap.error(f"--{k} must be >= 2 (<init> and <eos>)")
    return args


def main(argv=None):
    args = parse_args(argv)
    import torch  # after argument parsing, so that --help is fast

    torch.set_num_threads(args.threads)
    import_rss = peak_rss_bytes()  # PyTorch's own share (the CUDA wheels map several hundred MiB)
    decanlp_dir, commit, tmp = resolve_checkout(args.decanlp)
    try:
        mqan = load_decanlp(decanlp_dir)
        cfg = PRESETS[args.preset]
        eos = EOS if (args.mode == "train" or args.allow_early_stop) else -1
        model = build_model(mqan, torch, cfg, args.vocab, args.max_output, eos, args.seed)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)  # the modules are imported; the files are not needed
    lengths = {"context": args.context, "question": args.question, "answer": args.answer}
    batch = synthetic_batch(torch, args.batch, lengths, args.vocab, cfg["generative_vocab"], args.seed + 2)
    n_params = sum(p.numel() for p in model.params)
    print(f"decaNLP MQAN {args.preset}: {n_params:,} trainable parameters, batch {args.batch} x "
          f"({args.context}, {args.question}, {args.answer}), vocab {args.vocab}, "
          f"{len(batch.oov_to_limited_idx)} OOV words, {args.threads} threads, torch {torch.__version__}", flush=True)

    if args.mode == "train":
        times, extra = time_train(torch, model, batch, args.steps, cfg["dimension"])
    else:
        times, extra = time_decode(torch, model, batch, args.steps, args.max_output)
    med = sorted(times)[len(times) // 2]  # as mqan profile: the upper middle of an even count
    result = {
        "tool": "decanlp", "mode": args.mode, "preset": args.preset,
        "batch": args.batch, "context": args.context, "question": args.question, "answer": args.answer,
        "vocab": args.vocab, "steps": len(times), "threads": args.threads,
        "step_ms": med, "step_ms_min": min(times), "step_ms_max": max(times),
        "peak_rss_bytes": peak_rss_bytes(), "import_rss_bytes": import_rss, "parameters": n_params, "oov_words": len(batch.oov_to_limited_idx),
        "torch": torch.__version__, "python": platform.python_version(), "decanlp_commit": commit,
    }
    if args.mode == "train":
        result["tokens_per_s"] = args.batch * (args.context + args.question + args.answer) / (med / 1e3)
    else:
        result["sentences_per_s"] = args.batch / (med / 1e3)
        result["max_output"] = args.max_output
        result["beam"] = 1
    result.update(extra)
    if args.mode == "decode" and extra["decoder_steps"] < args.max_output:
        print(f"warning: greedy stopped after {extra['decoder_steps']} of {args.max_output} steps", file=sys.stderr)
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
