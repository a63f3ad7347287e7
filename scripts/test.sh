#!/usr/bin/env bash
# README command 2 (and .ci/run): build and run every test.
#   1. a short libFuzzer smoke of the GGUF and safetensors readers and the chat-template engine (clang, ASan+UBSan)
#   2. the input-handling tests again under ASan+UBSan (debug build)
#   3. the whole suite on the Release build (unit, tokenizer vectors, llama.cpp goldens, CLI)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
jobs=$(nproc)

echo "== fuzz smoke (GGUF reader, chat templates) =="
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j"$jobs" --target gguf_fuzz jinja_fuzz safetensors_fuzz
corpus=$(mktemp -d)
./build-fuzz/fuzz/gguf_fuzz -max_total_time="${CHASSIS_FUZZ_SECONDS:-30}" -max_len=32768 -rss_limit_mb=2048 \
  -timeout=10 -print_final_stats=1 "$corpus" ../shared/golden/models ../shared/models/ggml-vocab 2>&1 | tail -n 4
rm -rf "$corpus"
corpus=$(mktemp -d)
./build-fuzz/fuzz/jinja_fuzz -max_total_time="${CHASSIS_FUZZ_SECONDS:-30}" -max_len=8192 -rss_limit_mb=2048 \
  -timeout=20 -print_final_stats=1 "$corpus" ../shared/models/chat-templates 2>&1 | tail -n 4
rm -rf "$corpus"
corpus=$(mktemp -d)
./build-fuzz/fuzz/safetensors_fuzz -max_total_time="${CHASSIS_FUZZ_SECONDS:-30}" -max_len=65536 -rss_limit_mb=2048 \
  -timeout=10 -print_final_stats=1 "$corpus" ../shared/models/stories260K-hf/model.safetensors 2>&1 | tail -n 4
rm -rf "$corpus"

echo "== ASan+UBSan: input-handling tests =="
cmake --preset debug-asan >/dev/null
cmake --build --preset debug-asan -j"$jobs"
ctest --preset debug-asan -j"$jobs" -R 'HostileFiles|Gguf|GgmlVocab|Tokenizer|Utf8Stream|Quants|Kernels|Fp16|Bf16|Sampler|Cli|Jinja|ChatTemplate|Safetensors'

echo "== full suite (Release) =="
cmake --preset release >/dev/null
cmake --build --preset release -j"$jobs"
ctest --preset release -j"$jobs"
