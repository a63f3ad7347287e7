#!/usr/bin/python3
"""Oracle test: `chassis tokenize DIR` must give the same ids as transformers.js (npm
@huggingface/transformers, offline from the same folder) for every tokenizer.json in ../shared and
the Unigram folders make_unigram_tokenizers.py writes (../shared has none), on
tests/tokenizer/corpus.json, with special tokens added (add_special_tokens=True) and without
(--no-bos, add_special_tokens=False).

usage: compare_hf_tokenizers.py CHASSIS_BINARY SHARED_DIR"""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
JS = os.path.join(HERE, "..", "js")


def main():
    chassis, shared = sys.argv[1], sys.argv[2]
    if not os.path.isdir(os.path.join(JS, "node_modules", "@huggingface", "transformers")):
        print("transformers.js is not installed: run `npm ci` in tests/js (scripts/test.sh does)")
        return 1
    corpus = os.path.join(HERE, "corpus.json")
    texts = json.load(open(corpus, encoding="utf-8"))
    folders = sorted(os.path.dirname(os.path.join(root, f)) for root, _, files in os.walk(os.path.join(shared, "models"))
                     for f in files if f == "tokenizer.json")
    generated = tempfile.mkdtemp(prefix="chassis-unigram-")
    subprocess.run([sys.executable, os.path.join(HERE, "make_unigram_tokenizers.py"), corpus, generated], check=True)
    folders += sorted(os.path.join(generated, d) for d in os.listdir(generated))
    failures, compared = [], 0
    if True:
        for folder in folders:
            r = subprocess.run(["node", os.path.join(JS, "tokenize.mjs"), folder, corpus], capture_output=True, timeout=600)
            if r.returncode != 0:
                failures.append(f"{folder}: transformers.js failed: {r.stderr.decode()[-500:]}")
                continue
            expected = json.loads(r.stdout)
            for mode, flags in (("with_special", []), ("without_special", ["--no-bos"])):
                got = subprocess.run([chassis, "tokenize", folder, "--texts", corpus] + flags, capture_output=True, timeout=600)
                if got.returncode != 0:
                    failures.append(f"{os.path.basename(folder)} {mode}: chassis failed: {got.stderr.decode().strip()}")
                    continue
                for i, (ids, want) in enumerate(zip(json.loads(got.stdout), expected[mode])):
                    compared += 1
                    if ids != want:
                        k = next((k for k in range(min(len(ids), len(want))) if ids[k] != want[k]), min(len(ids), len(want)))
                        failures.append(f"{os.path.basename(folder)} text {i} {texts[i][:40]!r} {mode}: first difference at {k}\n"
                                        f"  transformers.js: {want[max(0, k - 3):k + 12]}\n  chassis:         {ids[max(0, k - 3):k + 12]}")
    print(f"{len(folders)} tokenizers x {len(texts)} texts x 2: {compared} encodings compared, {len(failures)} differ")
    for f in failures:
        print("FAIL", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
