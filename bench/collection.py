"""Collection cost: `pytest --collect-only -q tests tasks` vs bare `python -c "import pytest"`.

Both run as subprocesses from the repo root, interleaved, several times; medians are compared.
Target: collection at most 1.5 s above bare pytest start-up, and no torch, jax or litellm
imported while collecting (checked in a child that runs pytest.main(['--collect-only', ...])).
Usage: python bench/collection.py [--quick]
"""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_OVER_S = 1.5
HEAVY = ("torch", "jax", "litellm")
COLLECT = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "tests", "tasks"]
BARE = [sys.executable, "-c", "import pytest"]
CHILD = f"""
import contextlib, io, sys
with contextlib.redirect_stdout(io.StringIO()):
    import pytest
    rc = pytest.main(['--collect-only', '-q', '-p', 'no:cacheprovider', 'tests', 'tasks'])
heavy = sorted(m for m in {HEAVY!r} if m in sys.modules)
print('RC', int(rc), 'HEAVY', ','.join(heavy) or '-', 'MODULES', len(sys.modules))
"""


def wall(cmd: list[str], env: dict | None = None) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                       check=False)
    t = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr[-2000:]}")
    return t


def main(argv: list[str]) -> int:
    repeat = 3 if "--quick" in argv else 7
    env_note = os.environ.get("PYTEST_ADDOPTS", "")
    # A third variant with bytecode caching on (PYTHONDONTWRITEBYTECODE unset), its .pyc files (also
    # pytest's rewritten test modules) kept in a temporary PYTHONPYCACHEPREFIX, not in the checkout:
    # with PYTHONDONTWRITEBYTECODE=1 every run compiles and assert-rewrites every module again.
    prefix = tempfile.mkdtemp(prefix="mlgym-pyc-")
    cached = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    cached["PYTHONPYCACHEPREFIX"] = prefix
    try:
        wall(BARE), wall(COLLECT), wall(COLLECT, cached)  # warm the file cache and the .pyc files
        bare, coll, coll_c = [], [], []
        for _ in range(repeat):  # interleaved: a noisy neighbour hits all alike
            bare.append(wall(BARE))
            coll.append(wall(COLLECT))
            coll_c.append(wall(COLLECT, cached))
    finally:
        shutil.rmtree(prefix, ignore_errors=True)
    b, c, cc = statistics.median(bare), statistics.median(coll), statistics.median(coll_c)
    n = subprocess.run(COLLECT, cwd=ROOT, check=False, capture_output=True, text=True).stdout.strip()
    n = n.splitlines()[-1] if n else "?"
    print(f"bare `import pytest`       median {b:6.3f} s  runs {', '.join(f'{x:.2f}' for x in bare)}")
    print(f"collect-only tests tasks   median {c:6.3f} s  runs {', '.join(f'{x:.2f}' for x in coll)}  ({n})")
    print(f"collect-only, .pyc cached  median {cc:6.3f} s  runs {', '.join(f'{x:.2f}' for x in coll_c)}"
          f"  (PYTHONDONTWRITEBYTECODE here: {os.environ.get('PYTHONDONTWRITEBYTECODE', 'unset')})")
    over = c - b
    print(f"collection over bare start-up: {over:.3f} s (target <= {TARGET_OVER_S} s), ratio {c / b:.1f}x"
          + (f"  [PYTEST_ADDOPTS={env_note!r}]" if env_note else ""))
    child = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, check=False, capture_output=True, text=True)
    line = next((x for x in child.stdout.splitlines() if x.startswith("RC ")), child.stdout + child.stderr[-1000:])
    print(f"in-process collection: {line}")
    heavy = line.split("HEAVY ")[1].split()[0] if "HEAVY " in line else "?"
    ok_time, ok_heavy = over <= TARGET_OVER_S, heavy == "-"
    print(f"RESULT collection: {c:.2f} s vs bare pytest {b:.2f} s, +{over:.3f} s (target <= +{TARGET_OVER_S} s) "
          f"{'PASS' if ok_time else 'MISS'}; with .pyc cached {cc:.2f} s, +{cc - b:.3f} s "
          f"{'PASS' if cc - b <= TARGET_OVER_S else 'MISS'}; "
          f"heavy imports during collection: {heavy if heavy != '-' else 'none'} "
          f"{'PASS' if ok_heavy else 'MISS'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
