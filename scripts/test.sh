#!/usr/bin/env bash
# README command 2 (and .ci/run): build and run every test.
#   1. a short libFuzzer smoke of the GGUF and safetensors readers and the chat-template engine (clang, ASan+UBSan)
#   2. the input-handling tests again under ASan+UBSan (debug build)
#   3. the whole suite on the Release build (unit, tokenizer vectors, llama.cpp goldens, CLI)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
jobs=$(nproc)
# Test-only JavaScript oracles (transformers.js), pinned by tests/js/package-lock.json.
(cd tests/js && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

echo "== fuzz smoke (GGUF, safetensors, tokenizer.json, tokenizer.model, chat templates, OpenAI requests) =="
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j"$jobs" --target gguf_fuzz jinja_fuzz safetensors_fuzz tokenizer_json_fuzz openai_request_fuzz \
  sentencepiece_spec_fuzz
corpus=$(mktemp -d)
./build-fuzz/fuzz/gguf_fuzz -max_total_time="${CHASSIS_FUZZ_SECONDS:-30}" -max_len=32768 -rss_limit_mb=2048 \
  -timeout=10 -print_final_stats=1 "$corpus" ../shared/golden/models ../shared/models/ggml-vocab 2>&1 | tail -n 4
rm -rf "$corpus"
corpus=$(mktemp -d)
./build-fuzz/fuzz/jinja_fuzz -max_total_time="${CHASSIS_FUZZ_SECONDS:-30}" -max_len=8192 -rss_limit_mb=2048 \
  -timeout=20 -print_final_stats=1 "$corpus" ../shared/models/chat-templates 2>&1 | tail -n 4
rm -rf "$corpus"
corpus=$(mktemp -d)
# Seeds: small valid files (the real one in ../shared is too large to mutate usefully).
/usr/bin/python3 - "$corpus" <<'PY'
import json, struct, sys
def write(name, tensors, meta=None):
    header, data, off = ({"__metadata__": meta} if meta else {}), b"", 0
    for tname, dtype, shape, size in tensors:
        n = size
        for d in shape: n *= d
        header[tname] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + n]}
        data += bytes(range(n % 251)) + bytes(n - n % 251); off += n
    h = json.dumps(header).encode()
    open(f"{sys.argv[1]}/{name}", "wb").write(struct.pack("<Q", len(h)) + h + data)
write("a", [("w", "F32", [2, 3], 4), ("b", "BF16", [3], 2)], {"format": "pt"})
write("b", [("x", "F16", [1, 1, 4], 2), ("y", "I64", [0], 8), ("z", "U8", [5], 1)])
PY
./build-fuzz/fuzz/safetensors_fuzz -max_total_time="${CHASSIS_FUZZ_SECONDS:-30}" -max_len=4096 -rss_limit_mb=2048 \
  -timeout=10 -print_final_stats=1 "$corpus" 2>&1 | tail -n 4
rm -rf "$corpus"
corpus=$(mktemp -d)
cp ../shared/models/stories260K-hf/tokenizer.json "$corpus/seed"  # a small real one (20 KB) as the seed
/usr/bin/python3 tests/tokenizer/make_unigram_tokenizers.py tests/tokenizer/corpus.json "$corpus/unigram"  # and a Unigram one
mv "$corpus/unigram/t5-like/tokenizer.json" "$corpus/seed-unigram" && rm -rf "$corpus/unigram"
./build-fuzz/fuzz/tokenizer_json_fuzz -max_total_time="${CHASSIS_FUZZ_SECONDS:-30}" -max_len=32768 -rss_limit_mb=2048 \
  -timeout=10 -print_final_stats=1 "$corpus" 2>&1 | tail -n 4
rm -rf "$corpus"

corpus=$(mktemp -d)
cp ../shared/models/llama-2-tokenizer/tokenizer.model "$corpus/seed"
# and a small one: piece "a" (score 1.0), trainer_spec { model_type: BPE }, normalizer_spec { add_dummy_prefix: false }
printf '\x0a\x07\x0a\x01a\x15\x00\x00\x80\x3f\x12\x02\x18\x02\x1a\x02\x18\x00' > "$corpus/small"
./build-fuzz/fuzz/sentencepiece_spec_fuzz -max_total_time="${CHASSIS_FUZZ_SECONDS:-30}" -max_len=4096 -rss_limit_mb=2048 \
  -timeout=10 -print_final_stats=1 "$corpus" 2>&1 | tail -n 4
rm -rf "$corpus"

corpus=$(mktemp -d)
# Seeds: the request shapes the openai SDK sends.
printf '%s' '{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":5,"stream":true,"stream_options":{"include_usage":true}}' > "$corpus/chat.json"
printf '%s' '{"model":"m","messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},{"role":"tool","content":[{"type":"text","text":"x"}]}],"tools":[{"type":"function","function":{"name":"f","parameters":{}}}],"stop":["a","b"],"n":2,"seed":3,"logprobs":true,"top_logprobs":2}' > "$corpus/tools.json"
printf '%s' '{"model":"m","prompt":[1,2,3],"echo":true,"logprobs":2,"temperature":0.5,"top_p":0.9}' > "$corpus/completion.json"
./build-fuzz/fuzz/openai_request_fuzz -max_total_time="${CHASSIS_FUZZ_SECONDS:-30}" -max_len=4096 -rss_limit_mb=2048 \
  -timeout=10 -print_final_stats=1 "$corpus" 2>&1 | tail -n 4
rm -rf "$corpus"

echo "== ASan+UBSan: input-handling tests =="
cmake --preset debug-asan >/dev/null
cmake --build --preset debug-asan -j"$jobs"
ctest --preset debug-asan -j"$jobs" -R 'HfArchitectures|SentencePieceFolders|HostileFiles|Gguf|GgmlVocab|Tokenizer|Utf8Stream|Quants|Kernels|Fp16|Bf16|Sampler|Cli|Jinja|ChatTemplate|Safetensors|HfTokenizer|HfModel|RowInvariance|Golden.Packed|BatchEngine|StopMatcher|ServerApi|ServerLifecycle|ServerFaults'

echo "== full suite (Release) =="
cmake --preset release >/dev/null
cmake --build --preset release -j"$jobs"
ctest --preset release -j"$jobs"
