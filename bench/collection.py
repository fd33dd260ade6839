"""Collection cost: `pytest --collect-only -q tests tasks` vs bare `python -c "import pytest"`.

Both run as subprocesses from the repo root, interleaved, several times; medians are compared.
Target: collection at most 1.5 s above bare pytest start-up, and no torch, jax or litellm
imported while collecting (checked in a child that runs pytest.main(['--collect-only', ...])).
Usage: python bench/collection.py [--quick]
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
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


def wall(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    t = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr[-2000:]}")
    return t


def main(argv: list[str]) -> int:
    repeat = 3 if "--quick" in argv else 7
    env_note = os.environ.get("PYTEST_ADDOPTS", "")
    wall(BARE), wall(COLLECT)  # warm the file cache and the .pyc files
    bare, coll = [], []
    for _ in range(repeat):  # interleaved: a noisy neighbour hits both alike
        bare.append(wall(BARE))
        coll.append(wall(COLLECT))
    b, c = statistics.median(bare), statistics.median(coll)
    n = subprocess.run(COLLECT, cwd=ROOT, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    print(f"bare `import pytest`      median {b:6.3f} s  runs {', '.join(f'{x:.2f}' for x in bare)}")
    print(f"collect-only tests tasks  median {c:6.3f} s  runs {', '.join(f'{x:.2f}' for x in coll)}  ({n})")
    over = c - b
    print(f"collection over bare start-up: {over:.3f} s (target <= {TARGET_OVER_S} s), ratio {c / b:.1f}x"
          + (f"  [PYTEST_ADDOPTS={env_note!r}]" if env_note else ""))
    child = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, capture_output=True, text=True)
    line = next((l for l in child.stdout.splitlines() if l.startswith("RC ")), child.stdout + child.stderr[-1000:])
    print(f"in-process collection: {line}")
    heavy = line.split("HEAVY ")[1].split()[0] if "HEAVY " in line else "?"
    ok_time, ok_heavy = over <= TARGET_OVER_S, heavy == "-"
    print(f"RESULT collection: {c:.2f} s vs bare pytest {b:.2f} s, +{over:.2f} s (target <= +{TARGET_OVER_S} s) "
          f"{'PASS' if ok_time else 'MISS'}; heavy imports during collection: {heavy if heavy != '-' else 'none'} "
          f"{'PASS' if ok_heavy else 'MISS'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
