"""Latency of the file tools through env.step on a big workspace (local sandbox, tiny test task).

The workspace gets big.py (10,000 lines) and tree/ (5,000 files in 50 folders, one in ten holding
"needle"). Interleaved round by round, medians reported:
  open        `open big.py` (reads the file, shows a 1000-line window)
  goto        `goto 9000`
  edit        `edit 5000:5000` replacing one line of big.py (read, splice, syntax check, write, view)
  edit_txt    the same edit on big.txt, a copy that is not Python (no syntax check: compile() is skipped)
  search_dir  `search_dir needle` over the 5,000 files (grep in the sandbox; >100 hits are cut)
  search_file `search_file value_09 big.py`
  find_file   `find_file f7.txt`
Target: each median < 50 ms. Then large outputs: each observation's length against its cap.
Usage: python bench/tools.py [--quick]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_mlgym.task import load_task

LINES, DIRS, FILES_PER_DIR = 10_000, 50, 100


def populate(ws: Path) -> None:
    (ws / "big.py").write_text("".join(f"value_{i:05d} = {i}  # line {i} of a long module, padded to look like code\n"
                                       for i in range(1, LINES + 1)))
    (ws / "big.txt").write_bytes((ws / "big.py").read_bytes())
    for d in range(DIRS):
        folder = ws / "tree" / f"d{d:02d}"
        folder.mkdir(parents=True)
        for f in range(FILES_PER_DIR):
            n = d * FILES_PER_DIR + f
            folder.joinpath(f"f{f}.txt").write_text(f"file {n}\n" + ("needle\n" if n % 10 == 0 else "hay\n") * 3)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    rounds = 8 if args.quick else 40

    from pytest_mlgym.env import MLGymEnv
    env = MLGymEnv(load_task(ROOT / "tests/data/tasks/tiny"), sandbox="local", max_steps=10**9)
    env.reset(seed=0)
    try:
        ws = Path(env.sandbox.workdir)
        t = time.perf_counter()
        populate(ws)
        made = time.perf_counter() - t
        env.step("open big.py")
        flip = [0]

        def edit():
            flip[0] ^= 1
            return f"edit 5000:5000\nvalue_05000 = {5000 + flip[0]}  # edited\nend_of_edit"

        actions = {"open": lambda: "open big.py", "goto": lambda: "goto 9000", "edit": edit, "edit_txt": edit,
                   "search_dir": lambda: "search_dir needle", "search_file": lambda: "search_file value_09 big.py",
                   "find_file": lambda: "find_file f7.txt"}
        samples = {k: [] for k in actions}
        last = {}
        names = list(actions)
        for r in range(rounds):
            for k in names[r % len(names):] + names[:r % len(names)]:
                action = actions[k]()
                if k == "edit_txt":
                    env.step("open big.txt")
                t = time.perf_counter()
                obs, *_ = env.step(action)
                samples[k].append((time.perf_counter() - t) * 1000)
                last[k] = obs
                if k == "edit_txt":
                    env.step("open big.py")
        assert "Edited" in last["edit"] and "big.txt: lines" in last["edit_txt"], (
            last["edit"][:300], last["edit_txt"][:300])
        assert "more than 100 files" in last["search_dir"], last["search_dir"][-300:]
        assert (ws / "big.py").read_text().count("\n") == LINES

        # large outputs: the shell's cap (output_chars) and the tools' cap (max(output_chars, 120000))
        cap = env.task.spec.limits.output_chars
        big = {"seq 1 2000000 (shell, 14.9 MB)": "seq 1 2000000",
               "cat big.py (shell)": "cat big.py",
               "open big.py (tool, 1000-line window)": "open big.py",
               "python -c print('x'*10**7) (one long line)": "python -c \"print('x'*10**7)\""}
        sizes = {}
        for label, action in big.items():
            t = time.perf_counter()
            obs, *_ = env.step(action)
            sizes[label] = (len(obs), "truncated" in obs, (time.perf_counter() - t) * 1000)
    finally:
        env.close()

    med = {k: statistics.median(v) for k, v in samples.items()}
    print(f"tools: big.py {LINES} lines, tree/ {DIRS * FILES_PER_DIR} files (made in {made:.2f} s); "
          f"medians over {rounds} interleaved rounds, ms")
    print(f"{'tool':<12} {'median':>8} {'p90':>8} {'max':>8} {'obs chars':>10}  target <50 ms")
    for k, m in med.items():
        s = sorted(samples[k])
        print(f"{k:<12} {m:8.2f} {s[int(0.9 * (len(s) - 1))]:8.2f} {s[-1]:8.2f} {len(last[k]):10d}  "
              f"{'PASS' if m < 50 else 'MISS'}")
    print(f"large outputs (shell cap output_chars={cap}, tool cap {max(cap, 120_000)}):")
    ok_trunc = True
    for label, (n, cut, ms) in sizes.items():
        limit = max(cap, 120_000) if label.startswith("open") else cap
        fits = n <= limit + 200  # + the marker line
        ok_trunc &= fits
        print(f"  {label:<46} obs {n:>7} chars  truncated-marker={'yes' if cut else 'no ':<3}  {ms:8.1f} ms  "
              f"{'OK' if fits else 'OVER CAP'}")
    first = samples["edit"][0]
    print(f"the first edit of big.py took {first:.1f} ms: it compiles the whole file and notes where its top-level "
          f"statements start; later edits compile only the statements they touch (pytest_mlgym/pysyntax.py)")
    worst = max(med, key=med.get)
    print("RESULT tools: " + " ".join(f"{k}={v:.1f}ms" for k, v in med.items()) + f" (first edit {first:.0f}ms)" +
          f"; slowest {worst} {'PASS' if med[worst] < 50 else 'MISS'} (<50 ms); "
          f"large outputs {'capped' if ok_trunc else 'NOT capped'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
