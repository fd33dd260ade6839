"""A baseline's noise: the spread of its scores over seeds, and whether it survives another CPU.

``measure --seeds N`` runs the shipped baseline once per episode seed 0..N-1 (the sandbox's
``MLGYM_SEED``, which the shipped baselines train with); :func:`tolerance` turns the spread into
the task's tolerance. ``measure --threads T`` / ``--isa NAME`` re-runs seed 0 as another machine
would (other thread counts change the order of float reductions, other instruction sets other
kernels): :func:`other_cpu` sets the numeric libraries' variables for that run (the sandbox and
the evaluator inherit them: ``sandbox.isolation.base_env``). A score bit-identical to the plain
seed-0 run is ``deterministic``; otherwise twice the difference is a floor of the tolerance.
"""
from __future__ import annotations

import contextlib
import os
import statistics
from collections.abc import Iterator

# ATEN_CPU_CAPABILITY names (torch's kernel dispatch) -> what OpenBLAS, MKL and oneDNN call the same level
ISAS: dict[str, dict[str, str]] = {
    "default": {"OPENBLAS_CORETYPE": "Nehalem", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2", "ONEDNN_MAX_CPU_ISA": "SSE41"},
    "avx2": {"OPENBLAS_CORETYPE": "Haswell", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "avx512": {"OPENBLAS_CORETYPE": "SkylakeX", "MKL_ENABLE_INSTRUCTIONS": "AVX512",
               "ONEDNN_MAX_CPU_ISA": "AVX512_CORE"},
}


def cpu_env(threads: int | None = None, isa: str | None = None) -> dict[str, str]:
    """The environment variables that make the numeric libraries behave like a ``threads``-core
    machine with instruction set ``isa`` (torch's own ``set_num_threads`` in a script still wins)."""
    env: dict[str, str] = {}
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        env.update({name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")})
        env["XLA_FLAGS"] = (f"--xla_cpu_multi_thread_eigen={'false' if threads == 1 else 'true'} "
                            f"intra_op_parallelism_threads={threads}")
    if isa is not None:
        if isa not in ISAS:
            raise ValueError(f"unknown instruction set {isa!r}; use one of {', '.join(ISAS)}")
        env.update({"ATEN_CPU_CAPABILITY": isa, **ISAS[isa]})
    return env


@contextlib.contextmanager
def other_cpu(threads: int | None = None, isa: str | None = None) -> Iterator[dict[str, str]]:
    """Set :func:`cpu_env` in this process's environment for the block, then restore it."""
    env = cpu_env(threads, isa)
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield env
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def mean(scores: list[float]) -> float:
    """The scores' mean to 12 significant figures (equal scores give that score, not a rounding of it)."""
    return float(f"{statistics.fmean(scores):.12g}")


def std(scores: list[float]) -> float:
    """The sample standard deviation of the seeds' scores to 6 significant figures (0 for one score)."""
    return float(f"{statistics.stdev(scores):.6g}") if len(scores) > 1 else 0.0


def tolerance(scores: list[float], cross_cpu: float = 0.0) -> float:
    """How far a re-run of the baseline may land from the seeds' mean: three standard deviations
    of the seeds' scores, at least their range (every seed reproduces), and at least twice
    ``cross_cpu``, the seed-0 score's move on another CPU (0 for a deterministic baseline)."""
    if not scores:
        return 0.0
    spread = max(3 * std(scores), max(scores) - min(scores))
    return max(spread, 2 * abs(cross_cpu))


def rounded_up(value: float, digits: int = 3) -> float:
    """``value`` to ``digits`` significant figures, never below it (a tolerance must still cover the runs)."""
    if value <= 0:
        return 0.0
    out = float(f"{value:.{digits - 1}e}")
    if out < value:
        mantissa, exp = f"{value:.{digits - 1}e}".split("e")
        out = float(f"{float(mantissa) + 10 ** -(digits - 1):.{digits - 1}f}e{exp}")
    return out
