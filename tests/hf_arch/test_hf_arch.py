"""Each supported Hugging Face architecture against a PyTorch reference (goldens committed here,
made by torch_reference.py from the same deterministic folders, so CI needs no PyTorch):
  - chassis on the folder: the same 16 greedy tokens, and the logits at several steps within 1e-4
    relative error (max |a - b| / max |b|, in F32 with an F32 KV cache: `--kv-type f32`);
  - the folder converted to GGUF (`chassis convert --type f32`): the same greedy tokens.

usage: test_hf_arch.py CHASSIS_BINARY SHARED_DIR
"""
import array
import glob
import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
CHASSIS = SHARED = None
PROMPT_TEXT = 'Once upon a time, there was a little'


def run(*args):
    p = subprocess.run([CHASSIS, *args], capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise AssertionError(f'chassis {" ".join(args)} failed:\n{p.stderr}')
    return p.stdout


class HfArchitectures(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix='chassis-hf-arch-')
        cls.models = os.path.join(cls.tmp, 'models')
        subprocess.run([sys.executable, os.path.join(HERE, 'make_tiny_models.py'), SHARED, cls.models], check=True)
        cls.goldens = {os.path.basename(p)[:-5]: json.load(open(p)) for p in glob.glob(os.path.join(HERE, 'goldens', '*.json'))}

    def test_every_architecture_has_a_golden(self):
        self.assertEqual(sorted(self.goldens), sorted(os.listdir(self.models)))

    def check(self, arch):
        g = self.goldens[arch]
        d = os.path.join(self.models, arch)
        self.assertEqual(json.loads(run('tokenize', d, '--text', PROMPT_TEXT, '--json'))['ids'], g['prompt'])
        n = str(len(g['greedy']))
        # Logits with an F32 KV cache (the default f16 cache, as llama.cpp's, costs ~1e-3 relative).
        dump = os.path.join(self.tmp, 'dump-' + arch)
        out = json.loads(run('run', d, '--raw', '--temp', '0', '-n', n, '--json', '--kv-type', 'f32', '--dump', dump, PROMPT_TEXT))
        self.assertEqual(out['tokens'], g['greedy'], f'{arch}: greedy tokens differ from PyTorch')
        out = json.loads(run('run', d, '--raw', '--temp', '0', '-n', n, '--json', PROMPT_TEXT))
        self.assertEqual(out['tokens'], g['greedy'], f'{arch}: greedy tokens with the f16 cache differ from PyTorch')
        logits = sorted(glob.glob(os.path.join(dump, '*-result_output.f32')))
        self.assertEqual(len(logits), len(g['greedy']))
        for step in g['logits']:
            got = array.array('f')
            with open(logits[step['step']], 'rb') as f:
                got.frombytes(f.read())
            want = step['logits']
            self.assertEqual(len(got), len(want))
            err = max(abs(a - b) for a, b in zip(got, want)) / max(abs(b) for b in want)
            self.assertLessEqual(err, 1e-4, f'{arch} step {step["step"]}: relative error {err:.2e}')
        gguf = os.path.join(self.tmp, arch + '.gguf')
        run('convert', d, '-o', gguf, '--type', 'f32')
        out = json.loads(run('run', gguf, '--raw', '--temp', '0', '-n', str(len(g['greedy'])), '--json', PROMPT_TEXT))
        self.assertEqual(out['tokens'], g['greedy'], f'{arch}: the converted GGUF decodes differently')

    def test_llama(self):
        self.check('llama')

    def test_mistral(self):
        self.check('mistral')

    def test_qwen2(self):
        self.check('qwen2')

    def test_phi3(self):
        self.check('phi3')

    def test_qwen3(self):
        self.check('qwen3')

    def test_gemma2(self):
        self.check('gemma2')

    def test_qwen2_yarn(self):
        self.check('qwen2_yarn')

    def test_mixtral(self):
        self.check('mixtral')

    def test_qwen3moe(self):
        self.check('qwen3moe')


if __name__ == '__main__':
    CHASSIS, SHARED = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    unittest.main(argv=[sys.argv[0], '-v'] + sys.argv[3:])
