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

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'pylib'))
import chassis_cli  # noqa: E402
from chassis_cli import run  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CHASSIS = SHARED = None
PROMPT_TEXT = 'Once upon a time, there was a little'


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

    def test_generation_config_sampling_is_the_default(self):
        # do_sample false in generation_config.json means greedy (as transformers' generate): `chassis
        # run` without --temp follows it whatever the seed, and so does the converted GGUF (which
        # carries it as general.sampling.temp = 0); an explicit --temp still wins.
        import shutil
        g = self.goldens['llama']
        d = os.path.join(self.tmp, 'llama-greedy-config')
        shutil.copytree(os.path.join(self.models, 'llama'), d)
        with open(os.path.join(d, 'generation_config.json'), 'w') as f:
            json.dump({'bos_token_id': 1, 'eos_token_id': 2, 'do_sample': False, 'temperature': 0.9}, f)
        gguf = os.path.join(self.tmp, 'llama-greedy-config.gguf')
        run('convert', d, '-o', gguf, '--type', 'f32')
        n = str(len(g['greedy']))
        for model in (d, gguf):
            for seed in ('1', '2'):
                out = json.loads(run('run', model, '--raw', '-s', seed, '-n', n, '--json', PROMPT_TEXT))
                self.assertEqual(out['tokens'], g['greedy'], f'{model}: generation_config.json says greedy')
        sampled = [json.loads(run('run', d, '--raw', '--temp', '5', '-s', seed, '-n', n, '--json', PROMPT_TEXT))['tokens']
                   for seed in ('1', '2')]
        self.assertNotEqual(sampled[0], sampled[1], '--temp on the command line overrides the model default')
        with open(os.path.join(d, 'generation_config.json'), 'w') as f:
            json.dump({'temperature': -1}, f)
        p = subprocess.run([CHASSIS, 'run', d, '--raw', '-n', '1', PROMPT_TEXT], capture_output=True, text=True)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn('generation_config.json: "temperature" must be a number', p.stderr)

    def test_llama(self):
        self.check('llama')

    def test_mistral(self):
        self.check('mistral')

    def test_mistral_window(self):
        self.check('mistral_window')

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
    chassis_cli.BINARY = CHASSIS
    unittest.main(argv=[sys.argv[0], '-v'] + sys.argv[3:])
