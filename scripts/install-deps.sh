#!/usr/bin/env bash
# Installs the Debian 12 packages chassis needs to build and test (only those missing).
set -euo pipefail
packages=(build-essential cmake pkg-config git nlohmann-json3-dev libcli11-dev libpcre2-dev libutf8proc-dev
          libgtest-dev libbenchmark-dev clang libclang-rt-14-dev python3 python3-jinja2
          libcpp-httplib-dev libcurl4-openssl-dev libssl-dev libsentencepiece-dev python3-sentencepiece)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js + npm run the test-only JavaScript oracles; a machine may already have them from another
# source (e.g. nodesource), whose nodejs package must not be swapped for Debian's.
command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
