"""Writes Unigram tokenizer.json folders for the tokenizer oracle test (../shared has no Unigram
tokenizer), deterministically from tests/tokenizer/corpus.json (pure Python, no dependencies).

The vocab is a real unigram LM over the corpus: every character and the frequent substrings of its
words, scored log(count / total). Emoji and Hangul are left out, so those texts exercise unknown
tokens and their fusing. Three folders, shaped like the tokenizers people meet:
  - t5-like:     Precompiled + Replace(" {2,}") normalizers, WhitespaceSplit + Metaspace, "$A </s>";
  - xlmr-like:   Precompiled, Metaspace alone, "<s> $A </s>", an added <mask>;
  - plain-words: Lowercase, Split on ' ', pieces without '▁' (unknown runs fuse across words).
    (Not the Whitespace pre-tokenizer: transformers.js runs it with JavaScript's ASCII-only \w and a \s
    that includes U+FEFF, where Hugging Face's tokenizers use Unicode classes, as chassis does.)

usage: make_unigram_tokenizers.py CORPUS.json OUT_DIR
"""
import collections
import json
import math
import os
import sys

SPACE = '\u2581'


def left_out(ch):
    cp = ord(ch)
    return cp >= 0x1F000 or 0xAC00 <= cp <= 0xD7A3


def vocab_for(texts, prefix_words):
    counts = collections.Counter()
    for text in texts:
        for word in text.split():
            w = (SPACE + word) if prefix_words else word.lower()
            for i in range(len(w)):
                for j in range(i + 1, min(len(w), i + 6) + 1):
                    piece = w[i:j]
                    if not any(left_out(c) for c in piece):
                        counts[piece] += 1
    singles = sorted(p for p in counts if len(p) == 1)
    multi = sorted((p for p in counts if len(p) > 1 and counts[p] >= 2), key=lambda p: (-counts[p], p))[:500]
    total = sum(counts[p] for p in singles + multi)
    pieces = singles + multi
    if prefix_words and SPACE not in pieces:
        pieces.append(SPACE)
    # Scores rounded so that equal counts tie exactly (ties are part of what is tested).
    return [[p, round(math.log(max(counts[p], 1) / total), 6)] for p in pieces]


def added(content, i):
    return {'id': i, 'content': content, 'single_word': False, 'lstrip': False, 'rstrip': False,
            'normalized': False, 'special': True}


def template(prefix, suffix, ids):
    def seq(with_b):
        out = [{'SpecialToken': {'id': t, 'type_id': 0}} for t in prefix]
        out.append({'Sequence': {'id': 'A', 'type_id': 0}})
        out += [{'SpecialToken': {'id': t, 'type_id': 0}} for t in suffix]
        if with_b:
            out.append({'Sequence': {'id': 'B', 'type_id': 0}})
            out += [{'SpecialToken': {'id': t, 'type_id': 0}} for t in suffix]
        return out
    return {'type': 'TemplateProcessing', 'single': seq(False), 'pair': seq(True),
            'special_tokens': {t: {'id': t, 'ids': [ids[t]], 'tokens': [t]} for t in prefix + suffix}}


def write(out, name, specials, extra_added, vocab, normalizer, pre_tokenizer, post, decoder, unk):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    entries = [[s, 0.0] for s in specials] + vocab
    ids = {s: i for i, s in enumerate(specials)}
    added_tokens = [added(s, i) for i, s in enumerate(specials)]
    for s in extra_added:
        ids[s] = len(entries)
        entries.append([s, 0.0])
        added_tokens.append(added(s, ids[s]))
    tok = {'version': '1.0', 'truncation': None, 'padding': None, 'added_tokens': added_tokens,
           'normalizer': normalizer, 'pre_tokenizer': pre_tokenizer,
           'post_processor': post(ids) if post else None, 'decoder': decoder,
           'model': {'type': 'Unigram', 'unk_id': ids[unk], 'vocab': entries, 'byte_fallback': False}}
    with open(os.path.join(d, 'tokenizer.json'), 'w', encoding='utf-8') as f:
        json.dump(tok, f, ensure_ascii=False, indent=1)
    config = {'tokenizer_class': 'PreTrainedTokenizerFast', 'unk_token': unk, 'model_max_length': 512}
    if '</s>' in ids:
        config['eos_token'] = '</s>'
    with open(os.path.join(d, 'tokenizer_config.json'), 'w') as f:
        json.dump(config, f, indent=1)


def main():
    corpus, out = sys.argv[1], sys.argv[2]
    texts = json.load(open(corpus, encoding='utf-8'))
    metaspace = {'type': 'Metaspace', 'replacement': SPACE, 'prepend_scheme': 'always', 'split': True}
    precompiled = {'type': 'Precompiled', 'precompiled_charsmap': None}
    write(out, 't5-like', ['<pad>', '</s>', '<unk>'], [], vocab_for(texts, True),
          {'type': 'Sequence', 'normalizers': [precompiled, {'type': 'Replace', 'pattern': {'Regex': ' {2,}'}, 'content': ' '}]},
          {'type': 'Sequence', 'pretokenizers': [{'type': 'WhitespaceSplit'}, metaspace]},
          lambda ids: template([], ['</s>'], ids), metaspace, '<unk>')
    write(out, 'xlmr-like', ['<s>', '<pad>', '</s>', '<unk>'], ['<mask>'], vocab_for(texts, True),
          precompiled, metaspace, lambda ids: template(['<s>'], ['</s>'], ids), metaspace, '<unk>')
    write(out, 'plain-words', ['<unk>'], [], vocab_for(texts, False),
          {'type': 'Lowercase'}, {'type': 'Split', 'pattern': {'Regex': ' '}, 'behavior': 'Removed', 'invert': False},
          None, None, '<unk>')


if __name__ == '__main__':
    main()
