#!/usr/bin/env bash
# README command 1: install dependencies, build chassis (Release), and generate a short story with a
# real model from ../shared.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j"$(nproc)" --target chassis
./build/chassis show ../shared/models/stories260K/stories260K.gguf
./build/chassis run ../shared/models/stories260K/stories260K.gguf "Once upon a time" -n 96 --temp 0
