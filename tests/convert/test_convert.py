"""`chassis convert` against files llama.cpp wrote.

- stories260K-hf was derived from llama.cpp's stories260K.gguf; converting it back must give the
  same tensors byte for byte (q/k re-interleaved), the same metadata and vocab, and the same tokens.
- Converting with a quantize preset equals `chassis quantize` of the original (itself byte-identical
  to llama-quantize on the golden files).
- The Llama 2 tokenizer.json, converted vocab-only, must tokenize llama.cpp's own test vectors for
  its Llama SPM vocab (ggml-vocab-llama-spm.gguf.inp/.out) exactly.
- The Llama 3.2 tokenizer.json (byte-level BPE) converted vocab-only must tokenize a varied corpus
  exactly as the folder's tokenizer.json does (itself checked against transformers.js).

usage: test_convert.py CHASSIS_BINARY SHARED_DIR SOURCE_DIR
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'pylib'))
import chassis_cli  # noqa: E402
from chassis_cli import run  # noqa: E402

CHASSIS = SHARED = SOURCE = None


def read_gguf(path):
    """Metadata dict and {name: (type, dims, bytes)} of a GGUF file (v2/v3)."""
    with open(path, 'rb') as f:
        d = f.read()
    o = 4
    ver, = struct.unpack_from('<I', d, o)
    o += 4
    nt, nkv = struct.unpack_from('<QQ', d, o)
    o += 16

    def string():
        nonlocal o
        n, = struct.unpack_from('<Q', d, o)
        o += 8
        s = d[o:o + n].decode('utf-8', 'surrogateescape')
        o += n
        return s

    fmts = {0: '<B', 1: '<b', 2: '<H', 3: '<h', 4: '<I', 5: '<i', 6: '<f', 7: '<?', 10: '<Q', 11: '<q', 12: '<d'}

    def value(t):
        nonlocal o
        if t == 8:
            return string()
        if t == 9:
            et, = struct.unpack_from('<I', d, o)
            o += 4
            n, = struct.unpack_from('<Q', d, o)
            o += 8
            return [value(et) for _ in range(n)]
        v, = struct.unpack_from(fmts[t], d, o)
        o += struct.calcsize(fmts[t])
        return v

    meta = {}
    for _ in range(nkv):
        k = string()
        t, = struct.unpack_from('<I', d, o)
        o += 4
        meta[k] = value(t)
    infos = []
    for _ in range(nt):
        name = string()
        nd, = struct.unpack_from('<I', d, o)
        o += 4
        dims = struct.unpack_from('<%dQ' % nd, d, o)
        o += 8 * nd
        t, off = struct.unpack_from('<IQ', d, o)
        o += 12
        infos.append((name, t, dims, off))
    align = meta.get('general.alignment', 32)
    base = (o + align - 1) // align * align
    offsets = sorted(off for _, _, _, off in infos) + [len(d) - base]
    tensors = {}
    for name, t, dims, off in infos:
        nxt = min(x for x in offsets if x > off) if any(x > off for x in offsets) else len(d) - base
        tensors[name] = (t, dims, d[base + off: base + nxt])
    return meta, tensors


def tensor_bytes(t, dims, raw):
    # Trim alignment padding: the exact size from type and dims.
    sizes = {0: (1, 4), 1: (1, 2), 30: (1, 2), 8: (32, 34), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24),
             12: (256, 144), 13: (256, 176), 14: (256, 210)}
    block, nbytes = sizes[t]
    n = 1
    for x in dims:
        n *= x
    return raw[: n // block * nbytes]


class ConvertTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix='chassis-convert-')

    def path(self, name):
        return os.path.join(self.tmp, name)

    def test_stories_round_trips_to_llama_cpps_file(self):
        out = self.path('stories-f32.gguf')
        run('convert', f'{SHARED}/models/stories260K-hf', '-o', out, '--type', 'f32')
        meta, tensors = read_gguf(out)
        ref_meta, ref_tensors = read_gguf(f'{SHARED}/models/stories260K/stories260K.gguf')
        self.assertEqual(sorted(tensors), sorted(ref_tensors))
        for name, (t, dims, raw) in ref_tensors.items():
            got = tensors[name]
            self.assertEqual((got[0], got[1]), (t, dims), name)
            self.assertEqual(tensor_bytes(*got), tensor_bytes(t, dims, raw), f'{name} differs')
        for key in ['general.architecture', 'llama.context_length', 'llama.embedding_length', 'llama.block_count',
                    'llama.feed_forward_length', 'llama.attention.head_count', 'llama.attention.head_count_kv',
                    'llama.rope.dimension_count', 'tokenizer.ggml.model', 'tokenizer.ggml.tokens',
                    'tokenizer.ggml.token_type', 'tokenizer.ggml.bos_token_id', 'tokenizer.ggml.eos_token_id',
                    'tokenizer.ggml.unknown_token_id']:
            self.assertEqual(meta[key], ref_meta[key], key)
        self.assertAlmostEqual(meta['llama.attention.layer_norm_rms_epsilon'], ref_meta['llama.attention.layer_norm_rms_epsilon'])
        # SentencePiece scores: the same order (what the SPM tokenizer compares), not the same values.
        normal = [i for i, t in enumerate(ref_meta['tokenizer.ggml.token_type']) if t == 1]
        order = lambda s: sorted(normal, key=lambda i: (-s[i], i))
        self.assertEqual(order(meta['tokenizer.ggml.scores']), order(ref_meta['tokenizer.ggml.scores']))
        args = ['--raw', '--temp', '0', '-n', '64', 'Once upon a time']
        self.assertEqual(run('run', out, *args), run('run', f'{SHARED}/models/stories260K/stories260K.gguf', *args))
        texts = json.load(open(f'{SOURCE}/tests/tokenizer/corpus.json'))
        tf = self.path('corpus.json')
        json.dump(texts, open(tf, 'w'))
        self.assertEqual(run('tokenize', out, '--texts', tf),
                         run('tokenize', f'{SHARED}/models/stories260K/stories260K.gguf', '--texts', tf))

    def test_a_preset_equals_quantizing_the_original(self):
        out, ref = self.path('stories-q4km.gguf'), self.path('ref-q4km.gguf')
        run('convert', f'{SHARED}/models/stories260K-hf', '-o', out, '--type', 'q4_k_m')
        run('quantize', f'{SHARED}/models/stories260K/stories260K.gguf', ref, 'q4_k_m')
        meta, tensors = read_gguf(out)
        _, ref_tensors = read_gguf(ref)
        self.assertEqual(meta['general.file_type'], 15)
        for name, (t, dims, raw) in ref_tensors.items():
            self.assertEqual(tensors[name][:2], (t, dims), name)
            self.assertEqual(tensor_bytes(*tensors[name]), tensor_bytes(t, dims, raw), name)
        # The default is F16 weights with F32 norms, as llama.cpp's converter writes.
        run('convert', f'{SHARED}/models/stories260K-hf', '-o', self.path('f16.gguf'))
        meta, tensors = read_gguf(self.path('f16.gguf'))
        self.assertEqual(tensors['blk.0.attn_q.weight'][0], 1)
        self.assertEqual(tensors['blk.0.attn_norm.weight'][0], 0)

    def test_load_time_quant_equals_running_the_quantized_file(self):
        # `--quant P` re-encodes the weights in memory by the same per-tensor rules as `quantize`, so
        # it must give exactly the output of the file `quantize` writes (itself byte-identical to
        # llama-quantize's on the goldens); a folder gives the same text as its GGUF.
        gguf = f'{SHARED}/models/stories260K/stories260K.gguf'
        args = ['--raw', '--temp', '0', '-n', '48', 'Once upon a time']

        def result(model, *extra):  # the tokens and top-3 log-probabilities of every step
            j = json.loads(run('run', model, *extra, *args[:-1], '--json', '--logprobs', '3', args[-1]))
            return j['tokens'], j['top_logprobs']

        unquantized = result(gguf)
        for preset in ['q8_0', 'q4_0', 'q4_k_m']:
            ref = self.path(f'ref-{preset}.gguf')
            run('quantize', gguf, ref, preset)
            want = result(ref)
            self.assertNotEqual(want, unquantized, preset)  # so the comparisons below can fail
            self.assertEqual(result(gguf, '--quant', preset), want, preset)
            folder = result(f'{SHARED}/models/stories260K-hf', '--quant', preset)
            self.assertEqual(folder[0], want[0], preset)  # q/k rows are in the other rope order: same tokens
        p = subprocess.run([CHASSIS, 'run', self.path('ref-q8_0.gguf'), '--quant', 'q4_0', *args], capture_output=True, text=True)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("is already Q8_0", p.stderr)
        p = subprocess.run([CHASSIS, 'run', gguf, '--quant', 'q9', *args], capture_output=True, text=True)
        self.assertIn("unknown type 'q9'", p.stderr)

    def test_llama2_spm_vocab_tokenizes_llama_cpps_vectors(self):
        out = self.path('llama2-vocab.gguf')
        run('convert', f'{SHARED}/models/llama-2-tokenizer', '-o', out, '--vocab-only')
        meta, tensors = read_gguf(out)
        self.assertEqual(tensors, {})
        ref_meta, _ = read_gguf(f'{SHARED}/models/ggml-vocab/ggml-vocab-llama-spm.gguf')
        self.assertEqual(meta['tokenizer.ggml.model'], 'llama')
        self.assertEqual(meta['tokenizer.ggml.token_type'], ref_meta['tokenizer.ggml.token_type'])
        # This tokenizer.json spells 4 no-break-space pieces differently from tokenizer.model (see
        # its PROVENANCE); every other piece is identical.
        diff = [i for i, (a, b) in enumerate(zip(meta['tokenizer.ggml.tokens'], ref_meta['tokenizer.ggml.tokens'])) if a != b]
        self.assertLessEqual(len(diff), 4)
        for i in diff:
            self.assertIn('\u00a0', ref_meta['tokenizer.ggml.tokens'][i])
        base = f'{SHARED}/models/ggml-vocab/ggml-vocab-llama-spm.gguf'
        texts = open(base + '.inp', encoding='utf-8').read().split('\n__ggml_vocab_test__\n')
        expected = [[int(x) for x in line.split()] for line in open(base + '.out').read().split('\n')]
        texts = texts[:len(expected)]
        tf = self.path('spm-texts.json')
        json.dump(texts, open(tf, 'w'))
        got = json.loads(run('tokenize', out, '--texts', tf, '--no-bos', '--no-special'))
        for text, g, e in zip(texts, got, expected):
            self.assertEqual(g, e, repr(text))

    def test_tokenizer_model_only_folder_converts_as_llama_cpp_did(self):
        # Llama 2's tokenizer.model alone (no tokenizer.json): llama.cpp's own GGUF of this vocab was
        # made from that file, so every tokenizer key must equal it, and its test vectors must pass.
        folder = self.path('spm-only')
        os.makedirs(folder, exist_ok=True)
        for name in ('tokenizer.model', 'tokenizer_config.json'):
            shutil.copy(f'{SHARED}/models/llama-2-tokenizer/{name}', folder)
        out = self.path('spm-only.gguf')
        run('convert', folder, '-o', out, '--vocab-only')
        meta, _ = read_gguf(out)
        base = f'{SHARED}/models/ggml-vocab/ggml-vocab-llama-spm.gguf'
        ref, _ = read_gguf(base)
        for key in [k for k in ref if k.startswith('tokenizer.')]:
            self.assertEqual(meta.get(key), ref[key], key)
        texts = open(base + '.inp', encoding='utf-8').read().split('\n__ggml_vocab_test__\n')
        expected = [[int(x) for x in line.split()] for line in open(base + '.out').read().split('\n')]
        tf = self.path('spm-only-texts.json')
        json.dump(texts[:len(expected)], open(tf, 'w'))
        self.assertEqual(json.loads(run('tokenize', out, '--texts', tf, '--no-bos', '--no-special')), expected)
        # A unigram SentencePiece model (llama.cpp's t5 vocab) is refused by name; so is a file that is no model.
        with open(os.path.join(folder, 'tokenizer.model'), 'wb') as f:
            f.write(b'\x12\x02\x18\x01')  # ModelProto { trainer_spec { model_type: UNIGRAM } }
        p = subprocess.run([CHASSIS, 'convert', folder, '-o', self.path('y.gguf'), '--vocab-only'], capture_output=True, text=True)
        self.assertIn('unigram model converts to llama.cpp', p.stderr)
        with open(os.path.join(folder, 'tokenizer.model'), 'wb') as f:
            f.write(b'\x12\xff')
        p = subprocess.run([CHASSIS, 'convert', folder, '-o', self.path('y.gguf'), '--vocab-only'], capture_output=True, text=True)
        self.assertIn('not a SentencePiece model', p.stderr)

    def test_llama3_byte_level_vocab_tokenizes_as_its_tokenizer_json(self):
        out = self.path('llama3-vocab.gguf')
        folder = f'{SHARED}/models/llama-3.2-instruct-tokenizer'
        run('convert', folder, '-o', out, '--vocab-only')
        meta, _ = read_gguf(out)
        self.assertEqual(meta['tokenizer.ggml.model'], 'gpt2')
        self.assertEqual(meta['tokenizer.ggml.pre'], 'llama-bpe')
        self.assertEqual(meta['tokenizer.ggml.bos_token_id'], 128000)
        self.assertTrue(meta['tokenizer.ggml.add_bos_token'])
        self.assertIn('tokenizer.chat_template', meta)
        texts = json.load(open(f'{SOURCE}/tests/tokenizer/corpus.json'))
        tf = self.path('corpus3.json')
        json.dump(texts, open(tf, 'w'))
        for flags in ([], ['--no-bos']):
            self.assertEqual(json.loads(run('tokenize', out, '--texts', tf, *flags)),
                             json.loads(run('tokenize', folder, '--texts', tf, *flags)), flags)

    def test_what_cannot_convert_says_why(self):
        p = subprocess.run([CHASSIS, 'convert', f'{SHARED}/models/all-MiniLM-L6-v2', '-o', self.path('x.gguf'), '--vocab-only'],
                           capture_output=True, text=True)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("'BertModel' is not supported", p.stderr)
        p = subprocess.run([CHASSIS, 'convert', f'{SHARED}/models/stories260K-hf', '-o', self.path('x.gguf'), '--type', 'q9'],
                           capture_output=True, text=True)
        self.assertIn("unknown type 'q9'", p.stderr)
        self.assertFalse(os.path.exists(self.path('x.gguf')))
        # A tokenizer_config.json field of the wrong JSON type is named with the folder, not a crash.
        folder = self.path('null-flag')
        os.makedirs(folder, exist_ok=True)
        shutil.copy(f'{SHARED}/models/llama-2-tokenizer/tokenizer.json', folder)
        with open(os.path.join(folder, 'tokenizer_config.json'), 'w') as f:
            json.dump({'add_bos_token': None}, f)
        p = subprocess.run([CHASSIS, 'convert', folder, '-o', self.path('z.gguf'), '--vocab-only'], capture_output=True, text=True)
        self.assertEqual(p.returncode, 1)
        self.assertIn(folder + ': a tokenizer file has a field of an unexpected type', p.stderr)


if __name__ == '__main__':
    CHASSIS, SHARED, SOURCE = (os.path.abspath(a) for a in sys.argv[1:4])
    chassis_cli.BINARY = CHASSIS
    unittest.main(argv=[sys.argv[0], '-v'] + sys.argv[4:])
