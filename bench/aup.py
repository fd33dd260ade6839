"""AUP scoring cost: 1,000 tasks x 100 methods (seeded random scores, directions and baselines).

Times pytest_mlgym.scoring.aup (tau_max_for + profile inside), and aup_bootstrap on a smaller
set (seeded), each as the median of several runs. Target: aup < 1 s.
Usage: python bench/aup.py [--quick]
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numpy as np

from pytest_mlgym import scoring

TARGET_S = 1.0


def make(n_tasks: int, n_methods: int, seed: int = 0, runs: int = 0):
    rng = np.random.default_rng(seed)
    directions = {f"t{i}": ("max" if rng.random() < 0.5 else "min") for i in range(n_tasks)}
    baselines = {t: float(rng.uniform(0.5, 1.5)) for t in directions}
    scores, run_scores = {}, {}
    for t in directions:
        vals = rng.uniform(0.0, 2.0, size=(n_methods, max(runs, 1)))
        vals[rng.random(vals.shape) < 0.05] = np.nan  # some methods fail to score
        scores[t] = {f"m{j}": (None if np.isnan(vals[j, 0]) else float(vals[j, 0])) for j in range(n_methods)}
        run_scores[t] = {f"m{j}": [None if np.isnan(v) else float(v) for v in vals[j]] for j in range(n_methods)}
    return scores, run_scores, directions, baselines


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    repeat = 3 if quick else 7
    scores, _, directions, baselines = make(1000, 100, seed=0)
    result = scoring.aup(scores, directions, baselines)
    assert len(result) == 101 and all(0.0 <= v <= scoring.tau_max_for(scores, directions=directions,
                                                                        baselines=baselines) for v in result.values())
    t_aup = median_time(lambda: scoring.aup(scores, directions, baselines), repeat)
    t_tau = median_time(lambda: scoring.tau_max_for(scores, directions=directions, baselines=baselines), repeat)
    t_prof = median_time(lambda: scoring.profile(scores, directions, baselines), repeat)
    print(f"aup          1000 tasks x 100 methods: median {t_aup * 1000:8.1f} ms over {repeat} runs")
    print(f"tau_max_for  1000 tasks x 100 methods: median {t_tau * 1000:8.1f} ms")
    print(f"profile      1000 tasks x 100 methods: median {t_prof * 1000:8.1f} ms")
    # bootstrap: 100 tasks x 10 methods x 3 seeds, 1000 replicates (what a lite-suite report computes, x10)
    _, runs, d2, b2 = make(100, 10, seed=1, runs=3)
    t_boot = median_time(lambda: scoring.aup_bootstrap(runs, d2, b2, n_boot=1000, seed=0), max(1, repeat // 2))
    print(f"aup_bootstrap 100 tasks x 10 methods x 3 seeds, 1000 replicates: median {t_boot * 1000:8.1f} ms")
    verdict = "PASS" if t_aup < TARGET_S else "MISS"
    print(f"RESULT aup: {t_aup:.3f} s for 1000 tasks x 100 methods (target < {TARGET_S:.0f} s) {verdict}; "
          f"bootstrap 100x10x3 n_boot=1000 {t_boot:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
