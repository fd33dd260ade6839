"""What the first observation says about the sandbox a model plans in: the Python and the ML
packages importable *inside* it, its network, memory limit, CPUs and GPUs.

The packages are found by one command run in the sandbox (``find_spec``, never an import: fast,
nothing is written), once per process and backend configuration (:data:`_PROBED`), so that a
reset stays fast and two resets say the same. The rest comes from the sandbox's config (the task's
limits): inside a sandbox ``free`` and ``nproc`` show the host's memory and cores, not what the
sandbox may use. Nothing here names a host path.
"""
from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field

from ..observation import say
from ..sandbox import Sandbox, SandboxConfig

# import name -> what the model is told (the distribution's version is looked up by import name)
PACKAGES = ("numpy", "scipy", "pandas", "polars", "pyarrow", "sklearn", "xgboost", "lightgbm", "catboost",
            "statsmodels", "torch", "torchvision", "torchaudio", "timm", "jax", "jaxlib", "flax", "optax", "gymnax",
            "gymnasium", "tensorflow", "keras", "transformers", "tokenizers", "datasets", "accelerate", "peft",
            "sentencepiece", "einops", "numba", "matplotlib", "seaborn", "PIL", "cv2", "tqdm", "networkx")
PROBE = """
import importlib.metadata as md, importlib.util as u, json, os, sys
dists = md.packages_distributions()
found = {}
for name in %r:
    try:
        if u.find_spec(name) is None:
            continue
    except Exception:
        continue
    version = "?"
    for dist in dists.get(name, ()):
        try:
            version = md.version(dist)
            break
        except Exception:
            pass
    found[name] = version
cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
print("MLGYM_FACTS " + json.dumps({"python": sys.version.split()[0], "packages": found, "cpus": cpus}))
""" % (PACKAGES,)
PROBE_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class SandboxFacts:
    """The sandbox as the first observation describes it."""

    python: str | None  # None: the probe found no Python in the sandbox
    packages: dict[str, str] = field(default_factory=dict)  # import name -> version ("?" when unknown)
    network: bool = False
    memory_mb: int = 0
    cpus: float | None = None  # the cores it may use (the config's limit, else what the probe saw)
    gpus: tuple[str, ...] = ()  # the GPU ids given to it (CUDA_VISIBLE_DEVICES / device requests)

    def text(self) -> str:
        pkgs = ", ".join(f"{n} {v}" for n, v in sorted(self.packages.items(), key=lambda kv: kv[0].lower()))
        lines = [say("env_header"),
                 say("env_python", python=self.python, packages=pkgs or say("env_no_packages")) if self.python
                 else say("env_no_python"),
                 say("env_network") if self.network else say("env_no_network"),
                 say("env_memory", memory_mb=self.memory_mb)]
        if self.cpus is not None:
            lines.append(say("env_cpus", cpus=self.cpus))
        lines.append(say("env_gpus", count=len(self.gpus)) if self.gpus else say("env_no_gpu"))
        return "\n".join(lines)


_PROBED: dict[tuple, dict] = {}  # the probe's answer per backend configuration, for this process


def probe_key(backend: str, config: SandboxConfig) -> tuple:
    """What decides what the sandbox has installed: the backend and its session options."""
    return backend, repr(config.docker), repr(sorted(config.extra.items()))


def probed(sandbox: Sandbox, key: tuple) -> dict:
    """The Python, packages and cores the sandbox sees: run once per ``key`` (cached)."""
    if key not in _PROBED:
        cmd = f"(cd / && {{ python3 -c {shlex.quote(PROBE)} || python -c {shlex.quote(PROBE)}; }}) 2>/dev/null"
        found: dict = {}
        try:
            res = sandbox.exec(cmd, PROBE_TIMEOUT_S)
            for line in res.output.splitlines():
                if line.startswith("MLGYM_FACTS "):
                    found = json.loads(line.removeprefix("MLGYM_FACTS "))
        except Exception:  # a sandbox that cannot run it: say that nothing is known
            found = {}
        _PROBED[key] = found
    return _PROBED[key]


def facts(sandbox: Sandbox, key: tuple, config: SandboxConfig) -> SandboxFacts:
    found = probed(sandbox, key)
    cpus = config.cpus if config.cpus is not None else found.get("cpus")
    return SandboxFacts(python=found.get("python"), packages=dict(found.get("packages") or {}),
                        network=config.network, memory_mb=config.memory_mb,
                        cpus=float(cpus) if cpus is not None else None, gpus=tuple(config.gpus))
