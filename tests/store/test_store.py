"""The model store against a local mock hub: pull, resume, checksum rejection, auth and not-found
errors, offline resolution, list/rm, concurrent pulls, and a cache tree laid out by huggingface_hub's
rules (built here by hand) read unchanged.

usage: test_store.py CHASSIS_BINARY SHARED_DIR
"""
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mock_hub import Hub, Repo  # noqa: E402

CHASSIS = SHARED = None
STORIES_HF = ['config.json', 'generation_config.json', 'model.safetensors', 'special_tokens_map.json',
              'tokenizer.json', 'tokenizer_config.json']


def read(path):
    with open(path, 'rb') as f:
        return f.read()


class StoreTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix='chassis-store-')
        folder = {name: read(f'{SHARED}/models/stories260K-hf/{name}') for name in STORIES_HF}
        folder['README.md'] = b'# stories\n'
        folder['onnx/model.onnx'] = b'not needed' * 100   # other formats are not downloaded
        folder['pytorch_model.bin'] = b'not needed' * 100
        tagged = dict(folder, **{'README.md': b'# stories, v1\n'})
        gguf = read(f'{SHARED}/models/stories260K/stories260K.gguf')
        q8 = os.path.join(cls.tmp, 'q8.gguf')
        subprocess.run([CHASSIS, 'quantize', f'{SHARED}/models/stories260K/stories260K.gguf', q8, 'q8_0'],
                       check=True, capture_output=True)
        cls.q8 = read(q8)
        cls.gguf = gguf
        cls.hub = Hub()
        cls.hub.add(Repo('chassis-test/stories', {'main': folder, 'v1': tagged}))
        cls.hub.add(Repo('chassis-test/stories-gguf', {'main': {'stories260K-F32.gguf': gguf, 'stories260K-Q8_0.gguf': cls.q8,
                                                                 'README.md': b'ggufs'}}))
        cls.hub.add(Repo('chassis-test/gated', {'main': {'model-F32.gguf': gguf}}, gated_token='hf_secret'))
        # Distinct bytes per fault, so each has its own blob (and its own behaviour).
        cls.flaky = gguf + b'\0flaky'
        cls.slow = gguf + b'\0slow'
        cls.corrupt = gguf + b'\0corrupt'
        cls.hub.add(Repo('chassis-test/flaky', {'main': {'model-F32.gguf': cls.flaky}}))
        cls.hub.add(Repo('chassis-test/slow', {'main': {'model-F32.gguf': cls.slow}}))
        cls.hub.add(Repo('chassis-test/corrupt', {'main': {'model-F32.gguf': cls.corrupt}}))
        cls.hub.wrong_sha.add(hashlib.sha256(cls.corrupt).hexdigest())
        # A hostile listing: a file name that climbs out of the snapshot folder.
        cls.hub.add(Repo('chassis-test/hostile', {'main': {'../../../../escaped-Q8_0.gguf': gguf}}))

    @classmethod
    def tearDownClass(cls):
        cls.hub.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.cache = tempfile.mkdtemp(prefix='hub-', dir=self.tmp)

    def env(self, **extra):
        e = {k: v for k, v in os.environ.items() if not k.startswith(('HF_', 'CHASSIS_OFFLINE'))}
        e.update(HF_HUB_CACHE=self.cache, HF_ENDPOINT=self.hub.url, HOME=self.tmp)
        e.update(extra)
        return e

    def chassis(self, *args, ok=True, **env):
        p = subprocess.run([CHASSIS, *args], capture_output=True, text=True, env=self.env(**env), timeout=120)
        if ok:
            self.assertEqual(p.returncode, 0, f'chassis {" ".join(args)}:\n{p.stderr}')
        else:
            self.assertNotEqual(p.returncode, 0, f'chassis {" ".join(args)} should fail:\n{p.stdout}')
        return p

    def repo_dir(self, repo):
        return os.path.join(self.cache, 'models--' + repo.replace('/', '--'))

    def assert_no_partial_under_final_names(self, repo):
        blobs = os.path.join(self.repo_dir(repo), 'blobs')
        for name in os.listdir(blobs) if os.path.isdir(blobs) else []:
            if name.endswith('.incomplete'):
                continue
            data = read(os.path.join(blobs, name))
            digest = hashlib.sha256(data).hexdigest() if len(name) == 64 else hashlib.sha1(b'blob %d\0' % len(data) + data).hexdigest()
            self.assertEqual(digest, name, f'{name} holds data that does not match its name')

    # ---- pull ----

    def test_pull_writes_the_huggingface_hub_layout_and_runs_offline(self):
        p = self.chassis('pull', 'chassis-test/stories')
        repo = self.repo_dir('chassis-test/stories')
        commit = read(os.path.join(repo, 'refs', 'main')).decode()
        self.assertRegex(commit, '^[0-9a-f]{40}$')
        snap = os.path.join(repo, 'snapshots', commit)
        self.assertEqual(p.stdout.strip(), snap)
        self.assertEqual(sorted(os.listdir(snap)), sorted(STORIES_HF + ['README.md']))  # no onnx/, no .bin
        for name in STORIES_HF:
            link = os.path.join(snap, name)
            self.assertTrue(os.path.islink(link))
            target = os.readlink(link)
            self.assertTrue(target.startswith('../../blobs/'), target)  # relative, as huggingface_hub links
            data = read(link)
            self.assertEqual(data, read(f'{SHARED}/models/stories260K-hf/{name}'))
            blob = os.path.basename(target)
            expected = hashlib.sha256(data).hexdigest() if name.endswith('.safetensors') else \
                hashlib.sha1(b'blob %d\0' % len(data) + data).hexdigest()
            self.assertEqual(blob, expected)
        self.assert_no_partial_under_final_names('chassis-test/stories')
        # Run by name with the network off: the same tokens as the folder in ../shared.
        before = self.hub.count()
        args = ['run', '--raw', '--temp', '0', '-n', '24', 'Once upon a time']
        by_name = self.chassis(args[0], 'chassis-test/stories', *args[1:], HF_HUB_OFFLINE='1')
        local = self.chassis(args[0], f'{SHARED}/models/stories260K-hf', *args[1:])
        self.assertEqual(by_name.stdout, local.stdout)
        self.assertTrue(by_name.stdout.strip())
        self.assertEqual(self.hub.count(), before, 'offline mode touched the network')
        # Pulling again downloads nothing (only the listing and metadata requests).
        before = self.hub.count()
        self.chassis('pull', 'chassis-test/stories')
        self.assertFalse([r for r in self.hub.requests[before:] if r[1].startswith('/cdn/') or r[0] == 'GET' and '/resolve/' in r[1]])

    def test_names_select_gguf_files(self):
        p = self.chassis('pull', 'chassis-test/stories-gguf:q8_0')
        self.assertTrue(p.stdout.strip().endswith('stories260K-Q8_0.gguf'))
        snap = os.path.dirname(p.stdout.strip())
        self.assertEqual(os.listdir(snap), ['stories260K-Q8_0.gguf'])  # only what the name needs
        self.assertEqual(read(p.stdout.strip()), self.q8)
        show = self.chassis('show', 'chassis-test/stories-gguf:Q8_0', HF_HUB_OFFLINE='1')
        self.assertIn('Q8_0', show.stdout)
        e = self.chassis('pull', 'chassis-test/stories-gguf:Q4_K_M', ok=False)
        self.assertIn('no Q4_K_M GGUF', e.stderr)
        self.assertIn('F32, Q8_0', e.stderr)
        e = self.chassis('pull', 'chassis-test/stories-gguf', ok=False)
        self.assertIn('several GGUF files', e.stderr)
        p = self.chassis('pull', 'chassis-test/stories-gguf:stories260K-F32.gguf')
        self.assertEqual(read(p.stdout.strip()), self.gguf)
        run = self.chassis('run', 'chassis-test/stories-gguf:stories260K-F32.gguf', '--temp', '0', '-n', '8', '--raw', 'Once',
                           HF_HUB_OFFLINE='1')
        self.assertTrue(run.stdout.strip())

    def test_a_dropped_connection_is_resumed_with_a_range_request(self):
        sha = hashlib.sha256(self.flaky).hexdigest()
        self.hub.cut_after[sha] = 300000
        start = self.hub.count()
        p = self.chassis('pull', 'chassis-test/flaky')
        self.assertEqual(read(p.stdout.strip()), self.flaky)
        ranges = [r[2] for r in self.hub.requests[start:] if r[1] == f'/cdn/{sha}']
        self.assertEqual(ranges, [None, 'bytes=300000-'])
        self.assertIn('resuming', p.stderr)
        self.assert_no_partial_under_final_names('chassis-test/flaky')

    def test_a_killed_pull_leaves_only_an_incomplete_file_and_the_next_one_resumes(self):
        sha = hashlib.sha256(self.slow).hexdigest()
        self.hub.throttle[sha] = 0.02
        proc = subprocess.Popen([CHASSIS, 'pull', 'chassis-test/slow'], env=self.env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        part = os.path.join(self.repo_dir('chassis-test/slow'), 'blobs', sha + '.incomplete')
        deadline = time.time() + 30
        while time.time() < deadline and (not os.path.exists(part) or os.path.getsize(part) < 100000):
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        self.hub.throttle[sha] = 0
        have = os.path.getsize(part)
        self.assertGreater(have, 0)
        self.assertFalse(os.path.exists(os.path.join(self.repo_dir('chassis-test/slow'), 'blobs', sha)))
        self.assertFalse(os.path.exists(os.path.join(self.repo_dir('chassis-test/slow'), 'snapshots')) and
                         os.listdir(os.path.join(self.repo_dir('chassis-test/slow'), 'snapshots')) and
                         any(os.listdir(os.path.join(self.repo_dir('chassis-test/slow'), 'snapshots', c))
                             for c in os.listdir(os.path.join(self.repo_dir('chassis-test/slow'), 'snapshots'))))
        start = self.hub.count()
        p = self.chassis('pull', 'chassis-test/slow')
        self.assertEqual(read(p.stdout.strip()), self.slow)
        self.assertIn(f'bytes={have}-', [r[2] for r in self.hub.requests[start:]])
        self.assertFalse(os.path.exists(part))

    def test_concurrent_pulls_of_one_file_do_not_corrupt_it(self):
        sha = hashlib.sha256(self.slow).hexdigest()
        self.hub.throttle[sha] = 0.002
        procs = [subprocess.Popen([CHASSIS, 'pull', 'chassis-test/slow'], env=self.env(), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(3)]
        outs = [p.communicate(timeout=120) for p in procs]
        self.hub.throttle[sha] = 0
        for p, (out, err) in zip(procs, outs):
            self.assertEqual(p.returncode, 0, err)
            self.assertEqual(read(out.strip()), self.slow)
        self.assertTrue(any('waiting for another download' in err for _, err in outs))
        self.assert_no_partial_under_final_names('chassis-test/slow')

    def test_a_checksum_mismatch_discards_the_data(self):
        e = self.chassis('pull', 'chassis-test/corrupt', ok=False)
        self.assertIn('checksum mismatch', e.stderr)
        self.assertIn('discarded', e.stderr)
        blobs = os.path.join(self.repo_dir('chassis-test/corrupt'), 'blobs')
        self.assertEqual(os.listdir(blobs), [])  # neither a final blob nor a partial one
        snaps = os.path.join(self.repo_dir('chassis-test/corrupt'), 'snapshots')
        self.assertFalse(os.path.exists(snaps) and os.listdir(snaps))

    def test_gated_repos_say_how_to_authenticate(self):
        e = self.chassis('pull', 'chassis-test/gated', ok=False)
        self.assertIn('HTTP 401', e.stderr)
        self.assertIn('HF_TOKEN', e.stderr)
        e = self.chassis('pull', 'chassis-test/gated', ok=False, HF_TOKEN='hf_wrong')
        self.assertIn('with the token in HF_TOKEN', e.stderr)
        p = self.chassis('pull', 'chassis-test/gated', HF_TOKEN='hf_secret')
        self.assertEqual(read(p.stdout.strip()), self.gguf)
        # The token goes to the hub, never to the CDN the hub redirects to (checked by the mock's log
        # only indirectly: the CDN route never requires it).

    def test_missing_repos_files_and_revisions(self):
        e = self.chassis('pull', 'chassis-test/nope', ok=False)
        self.assertIn('no such repo', e.stderr)
        e = self.chassis('pull', 'chassis-test/stories-gguf:missing.gguf', ok=False)
        self.assertIn('has no file missing.gguf', e.stderr)
        e = self.chassis('pull', 'chassis-test/stories@nobranch', ok=False)
        self.assertIn('no such revision', e.stderr)
        e = self.chassis('pull', 'not a name', ok=False)
        self.assertIn('not a hub name', e.stderr)
        e = self.chassis('run', 'chassis-test/missing-offline', 'hi', ok=False, HF_HUB_OFFLINE='1')
        self.assertIn('not in the cache', e.stderr)
        self.assertIn('offline', e.stderr)
        e = self.chassis('pull', 'chassis-test/stories', ok=False, HF_ENDPOINT='http://127.0.0.1:9')
        self.assertIn('cannot reach', e.stderr)
        e = self.chassis('pull', 'chassis-test/stories', ok=False, CHASSIS_OFFLINE='1')
        self.assertIn('offline', e.stderr)

    def test_a_write_failure_is_reported_and_leaves_nothing_behind(self):
        # A file-size limit makes writes fail the way a full disk does (EFBIG instead of ENOSPC).
        p = subprocess.run(['bash', '-c', f'trap "" XFSZ; ulimit -f 200; exec {CHASSIS} pull chassis-test/stories-gguf:Q8_0'],
                           capture_output=True, text=True, env=self.env(), timeout=120)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn('writing failed', p.stderr)
        blobs = os.path.join(self.repo_dir('chassis-test/stories-gguf'), 'blobs')
        self.assertEqual(os.listdir(blobs), [])
        self.chassis('pull', 'chassis-test/stories-gguf:Q8_0')  # and a later pull works

    def test_a_hostile_file_listing_cannot_escape_the_cache(self):
        e = self.chassis('pull', 'chassis-test/hostile:Q8_0', ok=False)
        self.assertIn('unsafe file name', e.stderr)
        for d, _, files in os.walk(self.tmp):
            self.assertNotIn('escaped-Q8_0.gguf', files, d)

    def test_run_pulls_what_is_missing(self):
        p = self.chassis('run', 'chassis-test/stories-gguf:Q8_0', '--temp', '0', '-n', '8', '--raw', 'Once')
        self.assertTrue(p.stdout.strip())
        self.assertTrue(os.path.isdir(self.repo_dir('chassis-test/stories-gguf')))

    def test_list_and_rm_keep_what_other_revisions_use(self):
        self.chassis('pull', 'chassis-test/stories')
        self.chassis('pull', 'chassis-test/stories@v1')
        self.chassis('pull', 'chassis-test/stories-gguf:Q8_0')
        out = self.chassis('list').stdout
        lines = [l for l in out.splitlines()[1:] if l.strip()]
        self.assertEqual(len(lines), 3, out)
        self.assertTrue(any(l.startswith('chassis-test/stories ') and ' main ' in l and 'safetensors' in l for l in lines), out)
        self.assertTrue(any(' v1 ' in l for l in lines), out)
        self.assertTrue(any('gguf Q8_0' in l for l in lines), out)
        repo = self.repo_dir('chassis-test/stories')
        blobs_before = set(os.listdir(os.path.join(repo, 'blobs')))
        self.assertEqual(len(blobs_before), len(STORIES_HF) + 2)  # two READMEs, everything else shared
        self.chassis('rm', 'chassis-test/stories@v1')
        blobs_after = set(os.listdir(os.path.join(repo, 'blobs')))
        self.assertEqual(len(blobs_after), len(STORIES_HF) + 1)  # only v1's README went
        self.assertFalse(os.path.exists(os.path.join(repo, 'refs', 'v1')))
        self.assertTrue(os.path.exists(os.path.join(repo, 'refs', 'main')))
        self.chassis('run', 'chassis-test/stories', '--raw', '-n', '4', 'Once', HF_HUB_OFFLINE='1')
        self.chassis('rm', 'chassis-test/stories')
        self.assertFalse(os.path.exists(repo))
        self.assertTrue(os.path.isdir(self.repo_dir('chassis-test/stories-gguf')))
        e = self.chassis('rm', 'chassis-test/stories', ok=False)
        self.assertIn('not in the cache', e.stderr)
        self.assertEqual(len([l for l in self.chassis('list').stdout.splitlines()[1:] if l.strip()]), 1)

    def test_a_cache_written_by_huggingface_hub_is_read_unchanged(self):
        # Lay out models--org--name exactly as huggingface_hub's hf_hub_download does.
        repo = os.path.join(self.cache, 'models--someone--tiny-stories')
        commit = 'a' * 40
        os.makedirs(os.path.join(repo, 'blobs'))
        os.makedirs(os.path.join(repo, 'refs'))
        os.makedirs(os.path.join(repo, 'snapshots', commit))
        with open(os.path.join(repo, 'refs', 'main'), 'w') as f:
            f.write(commit)
        for name in STORIES_HF:
            data = read(f'{SHARED}/models/stories260K-hf/{name}')
            blob = hashlib.sha256(data).hexdigest() if name.endswith('.safetensors') else \
                hashlib.sha1(b'blob %d\0' % len(data) + data).hexdigest()
            with open(os.path.join(repo, 'blobs', blob), 'wb') as f:
                f.write(data)
            os.symlink(f'../../blobs/{blob}', os.path.join(repo, 'snapshots', commit, name))
        tree = sorted(os.path.join(d, f) for d, _, fs in os.walk(repo) for f in fs)
        before = {p: (os.lstat(p).st_mtime_ns, os.lstat(p).st_size) for p in tree}
        p = self.chassis('run', 'someone/tiny-stories', '--raw', '--temp', '0', '-n', '16', 'Once upon a time',
                         HF_HUB_OFFLINE='1')
        local = self.chassis('run', f'{SHARED}/models/stories260K-hf', '--raw', '--temp', '0', '-n', '16', 'Once upon a time')
        self.assertEqual(p.stdout, local.stdout)
        self.assertIn(f'someone/tiny-stories', self.chassis('list').stdout)
        self.chassis('show', 'someone/tiny-stories', HF_HUB_OFFLINE='1')
        self.chassis('tokenize', 'someone/tiny-stories@' + commit, '--text', 'hello', HF_HUB_OFFLINE='1')
        after = {p: (os.lstat(p).st_mtime_ns, os.lstat(p).st_size) for p in tree}
        self.assertEqual(before, after, 'reading the cache changed it')

    def test_serve_takes_hub_names(self):
        self.chassis('pull', 'chassis-test/stories-gguf:Q8_0')
        proc = subprocess.Popen([CHASSIS, 'serve', 'chassis-test/stories-gguf:Q8_0', '--port', '0'], env=self.env(HF_HUB_OFFLINE='1'),
                                stderr=subprocess.PIPE, text=True)
        try:
            line = proc.stderr.readline()
            self.assertIn('serving chassis-test/stories-gguf:Q8_0 on http://', line)
            url = line.split(' on ')[1].split()[0]
            import json
            import urllib.request
            models = json.load(urllib.request.urlopen(f'{url}/v1/models'))
            self.assertEqual([m['id'] for m in models['data']], ['chassis-test/stories-gguf:Q8_0'])
            req = urllib.request.Request(f'{url}/v1/completions', method='POST', data=json.dumps(
                {'model': 'chassis-test/stories-gguf:Q8_0', 'prompt': 'Once', 'max_tokens': 3}).encode())
            r = json.load(urllib.request.urlopen(req))
            self.assertEqual(r['usage']['completion_tokens'], 3)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


if __name__ == '__main__':
    CHASSIS, SHARED = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    unittest.main(argv=[sys.argv[0], '-v'] + sys.argv[3:])
