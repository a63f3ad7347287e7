"""Folders with only a SentencePiece tokenizer.model (no tokenizer.json), against Debian's
python3-sentencepiece and, for special tokens, against the same tokenizer's tokenizer.json:
  - every corpus text without special-token strings tokenizes exactly as sentencepiece encodes it
    (BOS prepended as tokenizer_config.json says; none with --no-bos), for Llama 2's model (the only
    SentencePiece model in ../shared that Debian's python3-sentencepiece 0.1.97 reads; it refuses
    Mistral v3's .model.v3, so that one has no oracle here);
  - the pieces of those ids, concatenated, decode to what sentencepiece decodes;
  - special-token text (<s>, </s>, <unk>) between words becomes those tokens, with the spaces around
    them treated as transformers' Llama tokenizer.json does (checked against that folder).

usage: test_sentencepiece_folders.py CHASSIS_BINARY SHARED_DIR SOURCE_DIR
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import sentencepiece

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'pylib'))
import chassis_cli  # noqa: E402
from chassis_cli import run  # noqa: E402

CHASSIS = SHARED = SOURCE = None


class SentencePieceFolders(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix='chassis-spm-')
        cls.corpus = json.load(open(os.path.join(SOURCE, 'tests/tokenizer/corpus.json')))

    def folder(self, name, model, config=None):
        d = os.path.join(self.tmp, name)
        os.makedirs(d, exist_ok=True)
        shutil.copy(model, os.path.join(d, 'tokenizer.model'))
        if config:
            shutil.copy(config, os.path.join(d, 'tokenizer_config.json'))
        return d

    def check_model(self, name, model, config=None):
        d = self.folder(name, model, config)
        sp = sentencepiece.SentencePieceProcessor(model_file=model)
        specials = [sp.id_to_piece(i) for i in range(sp.get_piece_size()) if sp.is_control(i) or sp.is_unknown(i)]
        texts = [t for t in self.corpus if t and not any(s and s in t for s in specials)]
        self.assertGreater(len(texts), 20)
        path = os.path.join(self.tmp, name + '-texts.json')
        json.dump(texts, open(path, 'w'))
        with_bos = json.loads(run('tokenize', d, '--texts', path))
        without = json.loads(run('tokenize', d, '--texts', path, '--no-bos'))
        for text, a, b in zip(texts, with_bos, without):
            want = sp.encode(text)
            self.assertEqual(b, want, f'{name}: {text!r}')
            self.assertEqual(a, [sp.bos_id()] + want, f'{name}: {text!r}')
        for text in texts[:10]:
            out = json.loads(run('tokenize', d, '--text', text, '--no-bos', '--json'))
            decoded = ''.join(out['pieces'])
            self.assertEqual(decoded[1:] if decoded.startswith(' ') else decoded, sp.decode(out['ids']), f'{name}: {text!r}')

    def test_llama2(self):
        m = f'{SHARED}/models/llama-2-tokenizer'
        self.check_model('llama2', f'{m}/tokenizer.model', f'{m}/tokenizer_config.json')

    def test_special_tokens_as_transformers_splits_them(self):
        m = f'{SHARED}/models/llama-2-tokenizer'
        d = self.folder('llama2-special', f'{m}/tokenizer.model', f'{m}/tokenizer_config.json')
        for text in ['Hello world <s> and </s> 你好 😀   spaces', '<unk> x', 'one </s>\n\ntwo']:
            self.assertEqual(run('tokenize', d, '--text', text), run('tokenize', m, '--text', text), repr(text))
        # --no-special: the same text is plain text
        sp = sentencepiece.SentencePieceProcessor(model_file=f'{m}/tokenizer.model')
        self.assertEqual(json.loads(run('tokenize', d, '--text', 'a </s> b', '--no-special', '--no-bos', '--json'))['ids'],
                         sp.encode('a </s> b'))

    def test_a_broken_model_file_is_named(self):
        d = os.path.join(self.tmp, 'broken')
        os.makedirs(d, exist_ok=True)
        for content in [b'\x0a\x05hello not a model', b'FROM llama-2-tiny-random.gguf\n']:
            open(os.path.join(d, 'tokenizer.model'), 'wb').write(content)
            p = subprocess.run([CHASSIS, 'tokenize', d, '--text', 'x'], capture_output=True, text=True)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn('tokenizer.model: not a SentencePiece model', p.stderr)


if __name__ == '__main__':
    CHASSIS, SHARED, SOURCE = (os.path.abspath(a) for a in sys.argv[1:4])
    chassis_cli.BINARY = CHASSIS
    unittest.main(argv=[sys.argv[0], '-v'] + sys.argv[4:])
