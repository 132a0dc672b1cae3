#!/usr/bin/env python3
"""Import a checkpoint that decaNLP's train.py wrote into an mqan checkpoint.

decaNLP's train.py saves RUN_DIR/iteration_N.pth = {"model_state_dict": ..., "field": FIELD} beside the
run's RUN_DIR/config.json (its arguments). This tool reads both and writes one safetensors file that
`mqan predict` answers with, as decaNLP's predict.py does:

  * the weights under decaNLP's state_dict names (F32);
  * `embeddings`: the word-vector table the Field holds (field.vocab.vectors);
  * model_config: dimension, transformer_heads, transformer_hidden, transformer_layers, rnn_layers,
    generative_vocab (= len(field.decoder_itos)) and embedding_dim, from config.json and the Field;
  * vocabulary: the Field's itos in decaNLP's order (" UNK " <pad> <init> <eos> first) with its counts;
    the decoder vocabulary is its first generative_vocab words, as train.py makes it (checked);
  * decoder mode `decanlp` (decaNLP's greedy computation);
  * `decanlp`: what predict.py reads besides (lower-casing, val_batch_size, max_output_length,
    the layout of the word vectors) so that `mqan predict` prepares its input as predict.py does.

What mqan does not implement is refused in one line naming it (CoVe, intermediate CoVe, ELMo, a
model without GloVe + CharNGram embeddings, rnn_layers other than 1, a model other than MQAN).
config.json is checked before PyTorch is even imported.

Unpickling the Field needs decaNLP's own code: give a checkout of salesforce/decaNLP with --decanlp
(its bundled torchtext copy, `text/`, is what the pickle names) and install what that copy imports:

    pip install torch numpy safetensors revtok six tqdm requests
    git clone https://github.com/salesforce/decaNLP /tmp/decanlp
    python3 tools/import_decanlp.py RUN_DIR/iteration_N.pth --decanlp /tmp/decanlp -o model.safetensors
"""

import argparse
import json
import os
import re
import sys

FORMAT = "mqan-checkpoint-1"
VOCAB_FORMAT = "mqan-vocab-1"
MODEL = "MultitaskQuestionAnsweringNetwork"
SPECIALS = ["<pad>", "<init>", "<eos>"]  # ids 1..3; id 0 is the Field's unk_token (" UNK ")
MAX_OUTPUT = 1000  # mqan's limit for --max-output
# State-dict prefixes of modules mqan does not implement, and the feature each belongs to.
UNSUPPORTED_PREFIXES = {
    "cove.": "CoVe", "project_cove.": "CoVe", "elmo.": "ELMo", "project_elmo.": "ELMo",
    "project_embeddings.": "ELMo",
}


class ImportError_(Exception):
    """One line for the user, without a traceback."""


def fail(message):
    raise ImportError_(message)


# --------------------------------------------------------------------------------------------
# config.json

def read_config(path):
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except OSError as e:
        fail(f"{path}: cannot read decaNLP's config.json ({e.strerror}); give it with --config")
    except ValueError as e:
        fail(f"{path}: not JSON ({e})")
    if not isinstance(config, dict):
        fail(f"{path}: expected a JSON object (decaNLP's arguments), got {type(config).__name__}")
    return config


def check_features(config, path):
    """Refuses, in one line naming it, each feature of decaNLP that mqan does not implement."""
    model = config.get("model", MODEL)
    if model != MODEL:
        fail(f"{path}: \"model\": {model} is not implemented by mqan (only {MODEL})")
    if config.get("cove", False):
        fail(f"{path}: CoVe (\"cove\": true, contextualized word vectors) is not implemented by mqan")
    if config.get("intermediate_cove", False):
        fail(f"{path}: intermediate CoVe (\"intermediate_cove\": true) is not implemented by mqan")
    elmo = config.get("elmo", [-1])
    if -1 not in (elmo if isinstance(elmo, list) else [elmo]):
        fail(f"{path}: ELMo (\"elmo\": {json.dumps(elmo)}) is not implemented by mqan")
    if not config.get("glove_and_char", True):
        fail(f"{path}: a model without GloVe and CharNGram embeddings (\"glove_and_char\": false) "
             "is not implemented by mqan")
    if config.get("rnn_layers", 1) != 1:
        fail(f"{path}: \"rnn_layers\": {config['rnn_layers']} is not implemented by mqan (only 1, decaNLP's default)")


def config_int(config, key, path, default=None):
    v = config.get(key, default)
    if isinstance(v, list) and len(v) >= 1:  # val_batch_size is a list (one per task)
        v = v[0]
    if isinstance(v, bool) or not isinstance(v, int):
        fail(f"{path}: \"{key}\": expected an integer, got {json.dumps(v)}")
    return v


def vector_layout(spec, embedding_dim, config):
    """The word-vector sets the table's columns hold, in order: [{"name", "dim"}, ...]."""
    if spec:
        out = []
        for part in spec.split(","):
            m = re.fullmatch(r"(glove|charngram):(\d+)", part.strip())
            if not m:
                fail(f"--vectors: \"{part}\" is not NAME:DIM with NAME glove or charngram (e.g. charngram:100,glove:300)")
            out.append({"name": m.group(1), "dim": int(m.group(2))})
    elif config.get("glove_and_char", True) and embedding_dim == 400:
        out = [{"name": "charngram", "dim": 100}, {"name": "glove", "dim": 300}]  # train.py: [CharNGram(), GloVe()]
    else:
        return []  # unknown: mqan predict then takes its --vectors files as plain word vectors
    if sum(x["dim"] for x in out) != embedding_dim:
        fail(f"--vectors: the dims add up to {sum(x['dim'] for x in out)}, the Field's vectors are {embedding_dim} wide")
    return out


# --------------------------------------------------------------------------------------------
# the checkpoint

def load_checkpoint(path, decanlp):
    import torch  # only now: config.json has been checked

    if decanlp:
        if not os.path.isdir(os.path.join(decanlp, "text", "torchtext")):
            fail(f"--decanlp: {decanlp} is not a decaNLP checkout (no text/torchtext, the torchtext copy its Field pickles name)")
        sys.path.insert(0, os.path.abspath(decanlp))
    try:
        saved = torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        fail(f"{path}: no such file")
    except ModuleNotFoundError as e:
        hint = ("give a decaNLP checkout with --decanlp DIR" if e.name in ("text", "text.torchtext")
                else "pip install revtok six tqdm requests")
        fail(f"{path}: cannot unpickle decaNLP's Field: no module named {e.name!r} ({hint})")
    except Exception as e:  # noqa: BLE001 - a corrupt file can raise anything
        fail(f"{path}: cannot read as a PyTorch checkpoint: {type(e).__name__}: {e}".splitlines()[0])
    if not isinstance(saved, dict) or "model_state_dict" not in saved or "field" not in saved:
        keys = sorted(saved) if isinstance(saved, dict) else type(saved).__name__
        fail(f"{path}: not a checkpoint of decaNLP's train.py (expected keys field, model_state_dict; got {keys})")
    return torch, saved["model_state_dict"], saved["field"]


def vocabulary_of(field, path):
    vocab = getattr(field, "vocab", None)
    itos = list(getattr(vocab, "itos", None) or [])
    if len(itos) < 4 or itos[1:4] != SPECIALS:
        fail(f"{path}: field.vocab.itos must start with the unknown token and {SPECIALS}, got {itos[:4]}")
    if itos[0] != getattr(field, "unk_token", itos[0]):
        fail(f"{path}: field.vocab.itos[0] is {itos[0]!r}, not the Field's unk_token {field.unk_token!r}")
    stoi = vocab.stoi
    for i, w in enumerate(itos):
        if stoi.get(w) != i:
            fail(f"{path}: field.vocab.stoi[{w!r}] is {stoi.get(w)}, not its position {i} in itos")
    # A lookup of a missing word in decaNLP's defaultdict stoi adds it (id 0): such words are
    # <unk> for good, also when predict.py later appends new words to the vocabulary.
    unk_words = sorted(w for w in stoi if stoi[w] == 0 and w != itos[0])
    freqs = getattr(vocab, "freqs", None) or {}
    counts = [0] * 4 + [int(freqs.get(w, 0)) for w in itos[4:]]
    decoder_itos = list(getattr(field, "decoder_itos", None) or [])
    if not decoder_itos or decoder_itos != itos[:len(decoder_itos)]:
        fail(f"{path}: field.decoder_itos is not the first words of field.vocab.itos (train.py makes it so)")
    return itos, counts, unk_words, len(decoder_itos)


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Needs PyTorch and a decaNLP checkout (--decanlp) to unpickle decaNLP's Field: "
               "pip install torch numpy safetensors revtok six tqdm requests; "
               "git clone https://github.com/salesforce/decaNLP. mqan itself never needs PyTorch.")
    ap.add_argument("checkpoint", help="RUN_DIR/iteration_N.pth, written by decaNLP's train.py")
    ap.add_argument("--config", help="decaNLP's config.json of the run (default: config.json beside the checkpoint)")
    ap.add_argument("--decanlp", help="a checkout of salesforce/decaNLP: its text/ (torchtext copy) unpickles the Field")
    ap.add_argument("-o", "--output", required=True, help="the mqan checkpoint to write (.safetensors)")
    ap.add_argument("--vectors", help="the word-vector sets of the Field's table, in column order, e.g. "
                                      "charngram:100,glove:300 (default: that for a 400-wide table, else unknown)")
    ap.add_argument("--decoder", choices=["decanlp", "consistent"], default="decanlp",
                    help="decoder mode recorded for mqan predict (default: decanlp, decaNLP's greedy computation)")
    args = ap.parse_args(argv)
    try:
        summary = run(args)
    except ImportError_ as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(summary)
    return 0


def run(args):
    if not os.path.isfile(args.checkpoint):
        fail(f"{args.checkpoint}: no such file (decaNLP's train.py writes RUN_DIR/iteration_N.pth)")
    config_path = args.config or os.path.join(os.path.dirname(os.path.abspath(args.checkpoint)), "config.json")
    config = read_config(config_path)
    check_features(config, config_path)
    max_output = config_int(config, "max_output_length", config_path, 100)
    val_batch = config_int(config, "val_batch_size", config_path, 256)
    if not 1 <= max_output <= MAX_OUTPUT:
        fail(f"{config_path}: \"max_output_length\": {max_output} is outside mqan's 1...{MAX_OUTPUT}")
    if not 1 <= val_batch <= 4096:
        fail(f"{config_path}: \"val_batch_size\": {val_batch} is outside mqan's 1...4096")

    torch, state, field = load_checkpoint(args.checkpoint, args.decanlp)
    for key in state:
        for prefix, feature in UNSUPPORTED_PREFIXES.items():
            if key.startswith(prefix):
                fail(f"{args.checkpoint}: {feature} (weights {key}) is not implemented by mqan")
    itos, counts, unk_words, generative = vocabulary_of(field, args.checkpoint)
    vectors = getattr(field.vocab, "vectors", None)
    if vectors is None or vectors.dim() != 2 or vectors.shape[0] != len(itos):
        shape = None if vectors is None else list(vectors.shape)
        fail(f"{args.checkpoint}: field.vocab.vectors must be [{len(itos)}, E] (one word vector per vocabulary entry), got {shape}")
    embedding_dim = int(vectors.shape[1])
    if "out.weight" not in state or state["out.weight"].shape[0] != generative:
        rows = state["out.weight"].shape[0] if "out.weight" in state else None
        fail(f"{args.checkpoint}: out.weight has {rows} rows, the Field's decoder vocabulary {generative} words")

    model_config = {
        "dimension": config_int(config, "dimension", config_path, 200),
        "transformer_heads": config_int(config, "transformer_heads", config_path, 3),
        "transformer_hidden": config_int(config, "transformer_hidden", config_path, 150),
        "transformer_layers": config_int(config, "transformer_layers", config_path, 2),
        "rnn_layers": config_int(config, "rnn_layers", config_path, 1),
        "generative_vocab": generative,
        "embedding_dim": embedding_dim,
    }
    decanlp = {
        "source": f"decaNLP train.py checkpoint {os.path.basename(args.checkpoint)}",
        "commit": str(config.get("commit", "")),
        "lower": bool(config.get("lower", True)),
        "val_batch_size": val_batch,
        "max_output_length": max_output,
        "vectors": vector_layout(args.vectors, embedding_dim, config),
        "embeddings": {"glove_and_char": bool(config.get("glove_and_char", True)), "cove": False,
                       "intermediate_cove": False, "elmo": [-1]},  # the others are refused above
        "unk_words": unk_words,
    }
    tensors = {k: v.detach().to(torch.float32).contiguous() for k, v in state.items()}
    tensors["embeddings"] = vectors.detach().to(torch.float32).contiguous()
    bad = [k for k, v in tensors.items() if not bool(torch.isfinite(v).all())]
    if bad:
        fail(f"{args.checkpoint}: tensor {bad[0]!r} holds a NaN or infinity")
    m = re.fullmatch(r"iteration_(\d+)\.pth", os.path.basename(args.checkpoint))
    compact = dict(separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    metadata = {
        "format": FORMAT,
        "model_config": json.dumps(model_config, **compact),
        "vocabulary": json.dumps({"format": VOCAB_FORMAT, "itos": itos, "counts": counts}, **compact),
        "decoder": args.decoder,
        "step": str(int(m.group(1)) if m else 0),
        "seed": str(config_int(config, "seed", config_path, 123)),
        "data_position": "{}",
        "decanlp": json.dumps(decanlp, **compact),
    }
    from safetensors.torch import save_file

    out = os.path.abspath(args.output)
    tmp = out + ".tmp"
    save_file(dict(sorted(tensors.items())), tmp, metadata=metadata)
    os.replace(tmp, out)
    layout = ",".join(f"{x['name']}:{x['dim']}" for x in decanlp["vectors"]) or "unknown"
    return (f"wrote {args.output}: {len(state)} weights, vocabulary {len(itos)} words (decoder {generative}), "
            f"embeddings {len(itos)}x{embedding_dim} ({layout}), d={model_config['dimension']} "
            f"heads={model_config['transformer_heads']} layers={model_config['transformer_layers']}, decoder {args.decoder}")


if __name__ == "__main__":
    sys.exit(main())
