#!/usr/bin/env python3
"""decaNLP's side of tools/test_import_decanlp.sh: a decaNLP run made with decaNLP's own code, and
decaNLP's own greedy answers to compare `mqan predict` with.

  train    decaNLP's arguments.parse() (config.json as train.py writes it), a ReversibleField whose
           vocabulary is built from the tasks' train.jsonl with word vectors (build_vocab, then the
           decoder vocabulary as train.py makes it), MultitaskQuestionAnsweringNetwork, train.py's
           BucketIterators and its `step` (Adam, warmup lr, clipping) round-robin over the tasks,
           then RUN_DIR/iteration_N.pth saved with train.py's own torch.save line.
  predict  predict.py's path: the checkpoint loaded as predict.py loads it (dropout 0, config keys
           it retrieves), its prepare_data (a Field over the data appended to the vocabulary, word
           vectors loaded again, decoder maps rebuilt), its iterator (sorted, val_batch_size from
           config.json) and greedy decoding; writes one JSON line per example in input order:
           {"task", "answer", "score"}. decaNLP's greedy returns no score: `score` is the sum of
           log P of the tokens it chose (eos included), read from decaNLP's own `probs` at each step.
  compare  answers identical and scores within --tolerance, per task; exit status 1 otherwise.

decaNLP's code is read from --decanlp, never copied. Its modules import some packages only its
metrics, tensorboard logging, CoVe and ELMo use; those get empty stand-ins here (nothing they
provide is called). The data sets are read with decaNLP's generic JSON dataset (train.jsonl,
val.jsonl under one folder per task), since its SST and Multi30k readers parse the original files.
Two stand-ins for decaNLP's defaults, both recorded: the word vectors are [CharNGram ; GloVe] from
a made-up char n-gram file (--charngram, read by torchtext's CharNGram) and a GloVe-format file
(--vectors, read by its Vectors) instead of the CharNGram + GloVe 840B downloads that train.py and
predict.py hard-code, and the vocabulary comes from the training files only (train.py
adds the validation sets), so that the validation data holds words predict.py must append.
"""

import argparse
import json
import math
import os
import shutil
import sys
import types

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # decaNLP's torch.load calls predate weights_only


def load_decanlp(decanlp):
    """Imports decaNLP's train.py, predict.py, util.py and torchtext copy, unmodified."""
    import datetime
    sys.path.insert(0, os.path.abspath(decanlp))

    def stub(name, **attrs):
        m = types.ModuleType(name)
        m.__dict__.update(attrs)
        sys.modules.setdefault(name, m)
        return sys.modules[name]

    class MTLSTM:  # CoVe is off; never built
        def __init__(self, *a, **k):
            raise RuntimeError("CoVe is not available here")

    stub("cove", MTLSTM=MTLSTM)
    stub("tensorboardX", SummaryWriter=None)  # train.py's logging (--no_tensorboard)
    stub("pyrouge", Rouge155=object)          # metrics.py subclasses it; never used
    stub("sacrebleu", corpus_bleu=None)       # metrics.py, not called
    try:
        import ujson  # noqa: F401
    except ImportError:
        stub("ujson", **{k: getattr(json, k) for k in ("load", "loads", "dump", "dumps")})
    try:
        import dateutil.tz  # noqa: F401
    except ImportError:  # arguments.py: the run's timestamp only
        tz = stub("dateutil.tz", tzoffset=lambda name, off: datetime.timezone(datetime.timedelta(seconds=off)))
        stub("dateutil", tz=tz)
    import train
    import predict
    import util
    import arguments
    from text import torchtext
    return types.SimpleNamespace(train=train, predict=predict, util=util, arguments=arguments, torchtext=torchtext)


def json_splits(tt, field, root, task, split):
    """decaNLP's generic JSON dataset: ROOT/TASK/train.jsonl or ROOT/TASK/val.jsonl."""
    kw = {"train": None, "validation": None, "test": None}
    kw[split] = "train" if split == "train" else "val"
    return tt.datasets.generic.JSON.splits(fields=field, root=root, name=task, **kw)[0]


def glove(tt, path, cache):
    os.makedirs(cache, exist_ok=True)
    return tt.vocab.Vectors(os.path.abspath(path), cache=cache)


def vector_sets(tt, a, cache):
    """train.py's [CharNGram(), GloVe()] (with --charngram), else the GloVe-format file alone."""
    sets = [glove(tt, a.vectors, cache)]
    if a.charngram:
        shutil.copyfile(a.charngram, os.path.join(cache, "charNgram.txt"))  # where CharNGram() reads it
        sets.insert(0, tt.vocab.CharNGram(cache=cache))
    return sets


# --------------------------------------------------------------------------------------------

def cmd_train(a):
    run_dir = os.path.abspath(a.run)
    parent, name = os.path.dirname(run_dir), os.path.basename(run_dir)
    argv = ["train.py", "--train_tasks", *a.tasks.split(","), "--root", parent, "--data", os.path.join(run_dir, "data"),
            "--save", parent, "--name", name, "--embeddings", os.path.join(run_dir, ".embeddings"), "--exist_ok",
            "--no_commit", "--no_tensorboard", "--devices", "-1", "--seed", str(a.seed),
            "--dimension", str(a.dimension), "--transformer_heads", str(a.heads), "--transformer_hidden", str(a.hidden),
            "--transformer_layers", str(a.layers), "--max_generative_vocab", str(a.generative_vocab),
            "--max_output_length", str(a.max_output), "--val_batch_size", str(a.val_batch_size),
            "--warmup", str(a.warmup), "--train_batch_tokens", str(a.batch_tokens), "--save_every", str(a.steps)]
    d = load_decanlp(a.decanlp)
    old = sys.argv
    sys.argv = argv
    try:
        args = d.arguments.parse()  # writes RUN_DIR/config.json, as train.py does
    finally:
        sys.argv = old
    import torch
    torch.set_num_threads(1)
    device = d.util.set_seed(args)
    tt = d.torchtext
    field = tt.data.ReversibleField(batch_first=True, init_token='<init>', eos_token='<eos>', lower=args.lower,
                                    include_lengths=True)  # train.py prepare_data
    train_sets = [json_splits(tt, field, args.data, t, "train") for t in args.train_tasks]
    field.build_vocab(*train_sets, max_size=args.max_effective_vocab,
                      vectors=vector_sets(tt, a, args.embeddings))
    field.decoder_itos = field.vocab.itos[:args.max_generative_vocab]  # train.py lines 94-97
    field.decoder_stoi = {word: idx for idx, word in enumerate(field.decoder_itos)}
    field.decoder_to_vocab = {idx: field.vocab.stoi[word] for idx, word in enumerate(field.decoder_itos)}
    field.vocab_to_decoder = {idx: field.decoder_stoi[word] for idx, word in enumerate(field.vocab.itos)
                              if word in field.decoder_stoi}
    d.util.preprocess_examples(args, args.train_tasks, train_sets, field, train=True)

    iters = [(t, iter(d.train.to_iter(args, 1, tok, x, device)))
             for t, x, tok in zip(args.train_tasks, train_sets, args.train_batch_tokens)]
    import models
    model = models.MultitaskQuestionAnsweringNetwork(field, args)  # train.py init_model
    model.params = d.util.get_trainable_params(model)
    opt = d.train.init_opt(args, model)
    losses = []
    for iteration in range(1, a.steps + 1):
        task, it = iters[(iteration - 1) % len(iters)]
        lr = d.train.get_learning_rate(iteration, args)
        loss, _ = d.train.step(model, next(it), opt, iteration, field, task, lr=lr, grad_clip=args.grad_clip)
        losses.append(loss)
    iteration = a.steps
    # train.py's save, verbatim:
    torch.save({'model_state_dict': {k: v.cpu() for k, v in model.state_dict().items()}, 'field': field},
               os.path.join(args.log_dir, f'iteration_{iteration}.pth'))
    print(f"decaNLP: trained {a.steps} steps on {','.join(args.train_tasks)} (loss {losses[0]:.3f} -> "
          f"{sum(losses[-10:]) / len(losses[-10:]):.3f}), vocabulary {len(field.vocab)} words, decoder "
          f"{len(field.decoder_itos)}; saved {os.path.join(args.log_dir, f'iteration_{iteration}.pth')}")


def cmd_predict(a):
    d = load_decanlp(a.decanlp)
    import torch
    torch.set_num_threads(1)
    tt = d.torchtext
    run_dir = os.path.dirname(os.path.abspath(a.checkpoint))
    # predict.py get_args: the keys it retrieves from config.json, dropout off.
    with open(os.path.join(run_dir, "config.json")) as f:
        config = json.load(f)
    args = argparse.Namespace(tasks=a.tasks.split(","), evaluate="validation", devices=[-1], seed=123,
                              data=os.path.abspath(a.data), embeddings=os.path.join(run_dir, ".embeddings"))
    for r in ['model', 'transformer_layers', 'rnn_layers', 'transformer_hidden', 'dimension', 'load',
              'max_val_context_length', 'val_batch_size', 'transformer_heads', 'max_output_length',
              'max_generative_vocab', 'lower', 'cove', 'intermediate_cove', 'elmo', 'glove_and_char']:
        if r in config:
            setattr(args, r, config[r])
        elif 'cove' in r:
            setattr(args, r, False)
        elif 'elmo' in r:
            setattr(args, r, [-1])
        elif 'glove_and_char' in r:
            setattr(args, r, True)
        else:
            setattr(args, r, None)
    args.dropout_ratio = 0.0
    for name in ("max_train_context_length", "max_answer_length"):  # read by preprocess_examples
        setattr(args, name, config[name])
    d.util.set_seed(args)

    save_dict = torch.load(a.checkpoint)  # predict.py __main__
    field = save_dict['field']
    import models
    model = getattr(models, args.model)(field, args)
    model.load_state_dict({k.replace('cove.rnn.', 'cove.rnn1.'): v for k, v in save_dict['model_state_dict'].items()})

    def get_all_splits(fld):  # predict.py get_all_splits, over the JSON data
        splits = []
        for task in args.tasks:
            s = json_splits(tt, fld, args.data, task, "validation")
            d.util.preprocess_examples(args, [task], [s], fld, train=False)
            splits.append(s)
        return splits

    # predict.py prepare_data, with the run's word vectors in place of CharNGram() + GloVe().
    new_vocab = tt.data.ReversibleField(batch_first=True, init_token='<init>', eos_token='<eos>', lower=args.lower,
                                        include_lengths=True)
    splits = get_all_splits(new_vocab)
    new_vocab.build_vocab(*splits)
    trained = len(field.vocab)
    args.max_generative_vocab = min(len(field.vocab), args.max_generative_vocab)
    field.append_vocab(new_vocab)
    field.vocab.load_vectors(vector_sets(tt, a, args.embeddings), True)
    field.decoder_to_vocab = {idx: field.vocab.stoi[word] for idx, word in enumerate(field.decoder_itos)}
    field.vocab_to_decoder = {idx: field.decoder_stoi[word] for idx, word in enumerate(field.vocab.itos)
                              if word in field.decoder_stoi}
    splits = get_all_splits(field)
    model.set_embeddings(field.vocab.vectors)
    if a.appended:  # the words predict.py appended, in its order
        with open(a.appended, "w", encoding="utf-8") as f:
            json.dump(field.vocab.itos[trained:], f, ensure_ascii=False, indent=0)
            f.write("\n")
    if a.vectors_subset:  # the lines of --vectors that predict.py read for the appended words
        wanted = {w.strip() for w in field.vocab.itos[trained:]}
        with open(a.vectors, encoding="utf-8") as f, open(a.vectors_subset, "w", encoding="utf-8") as out:
            out.write("".join(line for line in f if line.rstrip().split(" ")[0] in wanted))

    # predict.py run: its iterators; each Batch notes which examples it holds (observation only).
    import text.torchtext.data.iterator as itmod
    base = itmod.Batch

    class NotingBatch(base):
        def __init__(self, data=None, dataset=None, device=None, train=True):
            super().__init__(data, dataset, device, train)
            self.example_index = [ex.mqan_index for ex in data]

    itmod.Batch = NotingBatch
    bs = args.val_batch_size if isinstance(args.val_batch_size, list) else [args.val_batch_size]
    if len(bs) == 1 and len(splits) > 1:
        bs = bs * len(splits)
    steps = []
    orig_probs = model.probs

    def probs(*p, **k):
        out = orig_probs(*p, **k)
        steps.append(out.detach().clone())
        return out

    model.probs = probs
    eos = field.decoder_stoi['<eos>']
    lines = []
    model.eval()
    with torch.no_grad():
        for task, data, size in zip(args.tasks, splits, bs):
            for i, ex in enumerate(data.examples):
                ex.mqan_index = i
            answers = [None] * len(data.examples)
            for batch in d.predict.to_iter(data, size, torch.device('cpu')):
                steps.clear()
                _, p = model(batch)
                texts = field.reverse(p)
                for row, (idx, text) in enumerate(zip(batch.example_index, texts)):
                    score = 0.0
                    for s in steps:
                        value, pred = s[row, 0].max(-1)
                        score += math.log(float(value))
                        if int(pred) == eos:
                            break
                    answers[idx] = (text, score)
            lines += [json.dumps({"task": task, "answer": t, "score": s}, ensure_ascii=False) for t, s in answers]
    with open(a.out, "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))
    print(f"decaNLP predict.py path: {len(lines)} answers; vocabulary {trained} words from training, "
          f"{len(field.vocab)} after appending the data's words; batches of {bs[0]}")


def cmd_compare(a):
    def rows(path):
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    ours, theirs = rows(a.mqan), rows(a.decanlp)
    if len(ours) != len(theirs):
        print(f"FAIL: mqan wrote {len(ours)} answers, decaNLP {len(theirs)}")
        return 1
    ok = True
    tasks = []
    for r in theirs:
        if r["task"] not in tasks:
            tasks.append(r["task"])
    for task in tasks:
        pairs = [(m, t) for m, t in zip(ours, theirs) if t["task"] == task]
        same = sum(m["answer"] == t["answer"] for m, t in pairs)
        diffs = [abs(m["n_best"][0]["score"] - t["score"]) for m, t in pairs]
        worst = max(diffs) if diffs else 0.0
        passed = same == len(pairs) and worst <= a.tolerance
        ok &= passed
        print(f"{'ok' if passed else 'FAIL'} {task}: {same}/{len(pairs)} answers identical, "
              f"max |score diff| {worst:.2e} (tolerance {a.tolerance:g})")
        shown = 0
        for i, (m, t) in enumerate(pairs):
            if (m["answer"] != t["answer"] or abs(m["n_best"][0]["score"] - t["score"]) > a.tolerance) and shown < 5:
                print(f"  example {i}: mqan {m['answer']!r} {m['n_best'][0]['score']:.6f} | "
                      f"decaNLP {t['answer']!r} {t['score']:.6f}")
                shown += 1
    return 0 if ok else 1


def cmd_sample(a):
    """ROOT/TASK/{train,val,validation}.jsonl: the first lines of DATA/TASK's files."""
    for task in a.tasks.split(","):
        os.makedirs(os.path.join(a.out, task), exist_ok=True)
        for src, dsts, n in (("train.jsonl", ["train.jsonl"], a.train_lines),
                             ("validation.jsonl", ["val.jsonl", "validation.jsonl"], a.val_lines)):
            with open(os.path.join(a.data, task, src), encoding="utf-8") as f:
                lines = [line for _, line in zip(range(n), f)]
            if len(lines) < n:
                sys.exit(f"error: {os.path.join(a.data, task, src)} has {len(lines)} lines, fewer than {n}")
            for dst in dsts:
                with open(os.path.join(a.out, task, dst), "w", encoding="utf-8") as f:
                    f.write("".join(lines))


def cmd_vectors(a):
    """Made-up word vectors in GloVe text format for the words of a run's data (for the committed
    fixture, which cannot hold real GloVe vectors): about --coverage of the words, seeded."""
    import random
    import revtok
    words = set()
    for task in a.tasks.split(","):
        for name in ("train.jsonl", "val.jsonl"):
            with open(os.path.join(a.data, task, name), encoding="utf-8") as f:
                for line in f:
                    ex = json.loads(line)
                    for key in ("context", "question", "answer"):
                        words.update(t.strip().lower() for t in revtok.tokenize(ex[key]))
    if a.charngram:  # keys as torchtext's CharNGram looks them up: Ngram-<chars of #BEGIN# w #END#>
        grams = set()
        for w in words:
            chars = ['#BEGIN#'] + list(w) + ['#END#']
            for n in (2, 3, 4):
                grams.update(f"{n}gram-{''.join(chars[i:i + n])}" for i in range(len(chars) - n + 1))
        words = grams
    rng = random.Random(a.seed)
    with open(a.out, "w", encoding="utf-8") as f:
        for w in sorted(words):
            if w and not any(c.isspace() for c in w) and rng.random() < a.coverage:
                f.write(w + "".join(f" {rng.uniform(-1, 1):.4f}" for _ in range(a.dim)) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sample", help="copy the first lines of each task's files into a run's data folder")
    s.add_argument("--data", required=True)
    s.add_argument("--tasks", required=True)
    s.add_argument("--train-lines", type=int, required=True)
    s.add_argument("--val-lines", type=int, required=True)
    s.add_argument("--out", required=True)
    v = sub.add_parser("vectors", help="made-up GloVe-format vectors for the words of a run's data")
    v.add_argument("--data", required=True)
    v.add_argument("--tasks", required=True)
    v.add_argument("--out", required=True)
    v.add_argument("--dim", type=int, default=8)
    v.add_argument("--coverage", type=float, default=0.7)
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--charngram", action="store_true", help="char n-gram keys (2gram-ab ...) instead of words")
    t = sub.add_parser("train", help="a decaNLP run: config.json and iteration_N.pth")
    t.add_argument("--decanlp", required=True)
    t.add_argument("--run", required=True, help="RUN_DIR; its data/ holds TASK/train.jsonl")
    t.add_argument("--tasks", required=True)
    t.add_argument("--vectors", required=True, help="GloVe-format word vectors for the Field")
    t.add_argument("--charngram", help="a char n-gram file: the Field's vectors are then [CharNGram ; GloVe]")
    t.add_argument("--steps", type=int, default=120)
    t.add_argument("--seed", type=int, default=123)
    t.add_argument("--dimension", type=int, default=32)
    t.add_argument("--heads", type=int, default=3)
    t.add_argument("--hidden", type=int, default=48)
    t.add_argument("--layers", type=int, default=2)
    t.add_argument("--generative-vocab", type=int, default=2000)
    t.add_argument("--max-output", type=int, default=100)
    t.add_argument("--val-batch-size", type=int, default=64)
    t.add_argument("--warmup", type=int, default=40)
    t.add_argument("--batch-tokens", type=int, default=2000)
    p = sub.add_parser("predict", help="decaNLP's predict.py path; answers and scores as JSONL")
    p.add_argument("--decanlp", required=True)
    p.add_argument("--checkpoint", required=True, help="RUN_DIR/iteration_N.pth (config.json beside it)")
    p.add_argument("--data", required=True, help="ROOT with TASK/val.jsonl")
    p.add_argument("--tasks", required=True)
    p.add_argument("--vectors", required=True)
    p.add_argument("--charngram", help="as for train")
    p.add_argument("--out", required=True)
    p.add_argument("--appended", help="also write the words predict.py appended to the vocabulary (JSON list)")
    p.add_argument("--vectors-subset", help="also write the lines of --vectors for the words predict.py appended")
    c = sub.add_parser("compare", help="mqan predict's JSONL against decaNLP's")
    c.add_argument("--mqan", required=True)
    c.add_argument("--decanlp", required=True)
    c.add_argument("--tolerance", type=float, default=1e-4)
    a = ap.parse_args()
    commands = {"sample": cmd_sample, "vectors": cmd_vectors, "train": cmd_train, "predict": cmd_predict,
                "compare": cmd_compare}
    return commands[a.cmd](a) or 0


if __name__ == "__main__":
    sys.exit(main())
