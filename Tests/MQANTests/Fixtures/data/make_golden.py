#!/usr/bin/env python3
"""Writes golden.json: decaNLP's own tokenization and vocabulary order for the samples here.

Usage: python3 make_golden.py REVTOK_DIR
  REVTOK_DIR holds revtok/tokenizer.py of jekbradbury/revtok (0.0.3, what decaNLP's Dockerfiles
  pip-install), e.g. a checkout of github.com/jekbradbury/revtok.

Tokens are what torchtext's ReversibleField(lower=True).preprocess gives (decaNLP's FIELD):
revtok.tokenize(s.rstrip('\n')), then str.lower per token. The vocabularies transcribe
torchtext's Vocab.__init__ (decaNLP text/torchtext/vocab.py): sort by token, then stably by
decreasing count; specials first. 'fields' counts context, question, answer; 'decanlp' adds
decaNLP's CQA fields 'Context:', 'Question:' and get_context_question(context, question).
"""
import collections
import importlib.util
import json
import os
import sys

# Only revtok/tokenizer.py (the package's __init__ also imports subwords.py, which needs tqdm).
spec = importlib.util.spec_from_file_location('tokenizer', os.path.join(sys.argv[1], 'revtok', 'tokenizer.py'))
rt = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rt)

here = os.path.dirname(os.path.abspath(__file__))
SPECIALS = ['<unk>', '<pad>', '<init>', '<eos>']


def tok(s):
    return [t.lower() for t in rt.tokenize(s.rstrip('\n'))]


def read(rel):
    with open(os.path.join(here, rel), encoding='utf-8') as f:
        return [json.loads(line) for line in f if line.strip()]


def vocab(counter):
    words = sorted(counter.items(), key=lambda t: t[0])
    words.sort(key=lambda t: t[1], reverse=True)
    return SPECIALS + [w for w, c in words if w not in SPECIALS]


out = {'tokens': {}, 'detokenized': {}, 'vocab': {}}
for rel in ['sst/validation.jsonl', 'multi30k.en.de/validation.jsonl', 'squad/validation.jsonl']:
    rows = read(rel)
    out['tokens'][rel] = [[tok(r[k]) for k in ('context', 'question', 'answer')] for r in rows]
    out['detokenized'][rel] = [[rt.detokenize(tok(r[k])) for k in ('context', 'question', 'answer')]
                               for r in rows]
extra = ['', ' ', 'Hello, world.', '  two  spaces  ', 'a...b', "don't", '(CNN)Share', 'x\u00a0y', 'tab\there',
         'ΟΔΟΣ Σ.', 'İstanbul', '1930s', 'a - b', 'e\u0301 caf\u00e9', 'trailing\n\n', '\u4e2d\u6587!?']
# Like the files' rows, each extra string is a row of one field.
out['tokens']['extra'] = [[tok(s)] for s in extra]
out['detokenized']['extra'] = [[rt.detokenize(tok(s))] for s in extra]
out['extra'] = extra

train = [r for t in ['sst', 'squad', 'multi30k.en.de'] for r in read(f'{t}/train.jsonl')]
fields, deca = collections.Counter(), collections.Counter()
for r in train:
    for k in ('context', 'question', 'answer'):
        fields.update(tok(r[k]))
        deca.update(tok(r[k]))
    deca.update(tok('Context:'))
    deca.update(tok('Question:'))
    deca.update(tok('Context: ' + r['context'] + ' Question: ' + r['question']))
out['vocab']['contextQuestionAnswer'] = vocab(fields)
out['vocab']['decaNLP'] = vocab(deca)

with open(os.path.join(here, 'golden.json'), 'w', encoding='utf-8') as f:
    json.dump(out, f, ensure_ascii=False, separators=(',', ':'))
    f.write('\n')
