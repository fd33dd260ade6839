"""Cost of one agent step on the local sandbox, as ratios measured side by side in one run.

Variants, interleaved round by round (the machine is shared and noisy), medians reported:
  env      MLGymEnv.step("true") through the tiny test task (tools, truncation, trajectory, sandbox)
  sandbox  env.sandbox.exec("true", 10) alone (marker protocol, select/read, disk/oom checks)
  fresh    subprocess.run(["bash", "-c", "true"]) (a new process per command)
  pipe     a raw persistent bash fed through a pipe, ended by a done-marker
  pipe+    the same raw pipe sent the sandbox's exact command line (`eval '<cmd>'; <end> $?`, where
           <end> is a function printing a split marker with $? and $PWD): the shell-side share
  oom      the sandbox's read of its control group's OOM count, once per command (harness side)
under each isolation mode that works here (MLGYM_ISOLATION=bwrap|unshare|none), twice:
  one core   the harness and every shell pinned to one CPU (children inherit the affinity). A
             command's round trip is two wake-ups; on one core each is a direct switch, so the
             figures are stable. This is the measurement the targets are judged on.
  free       no pinning: the scheduler decides per process pair whether the shell wakes on the
             harness's core or another one, and a cross-core wake-up on this VM costs ~0.03 ms
             (an inter-processor interrupt). The raw pipe and env.step each land on either side
             from run to run, so these ratios swing between ~1x and ~9x; shown for honesty.

Targets: env <= 0.15x fresh, env <= 5x pipe.   Usage: python bench/step_local.py [--quick]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_mlgym.sandbox import isolation
from pytest_mlgym.task import load_task

M = "__BENCH_DONE__"  # RawPipe.MARK
# what LocalSandbox.exec writes for `true` (see pytest_mlgym/sandbox/shell.py), with our marker
SANDBOX_PRELUDE = f"__end() {{ builtin printf '\\n%s%s %s %s\\n' {M[:6]} {M[6:]} \"$1\" \"$PWD\"; }}\n"
SANDBOX_LINE = "eval true; __end $?\n"


class RawPipe:
    """The floor: a persistent bash, one write and reads until a marker line."""

    MARK = b"__BENCH_DONE__"

    def __init__(self, argv=("bash", "--noprofile", "--norc")):
        self.p = subprocess.Popen(list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT)
        self.fd = self.p.stdout.fileno()
        self.p.stdin.write(SANDBOX_PRELUDE.encode())  # defines the sandbox's end function, for pipe+

    def run(self, cmd: str, line: str | None = None) -> bytes:
        """``line``: send this instead (the sandbox's exact wrapper), still ended by our marker."""
        line = line if line is not None else f"{cmd}; echo {self.MARK[:6].decode()}{self.MARK[6:].decode()}\n"
        self.p.stdin.write(line.encode())
        self.p.stdin.flush()
        buf = b""
        while self.MARK not in buf:
            chunk = os.read(self.fd, 65536)
            if not chunk:
                raise RuntimeError("raw shell died")
            buf += chunk
        return buf

    def close(self):
        self.p.stdin.close()
        self.p.wait()


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def measure(variants: dict, rounds: int, per_round: dict) -> dict[str, float]:
    """Interleave: each round runs every variant's batch, in a rotating order; per-call medians (ms)."""
    samples = {k: [] for k in variants}
    names = list(variants)
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for k in order:
            for _ in range(per_round[k]):
                samples[k].append(timed(variants[k]))
    return {k: statistics.median(v) for k, v in samples.items()}


def modes() -> list[str]:
    out = []
    if isolation.shutil.which("bwrap") and isolation._works(["bwrap", *isolation._PROBE]):
        out.append("bwrap")
    if isolation.shutil.which("unshare") and isolation._works(["unshare", "-n", *isolation._no_caps(), "true"]):
        out.append("unshare")
    return out + ["none"]


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def run(per: dict, rounds: int, cpus: set[int]) -> tuple[list, list]:
    """Measure every isolation mode with the harness (and so every shell it starts) on ``cpus``."""
    from pytest_mlgym.env import MLGymEnv
    os.sched_setaffinity(0, cpus)
    task = load_task(ROOT / "tests/data/tasks/tiny")
    raw = RawPipe()
    rows, results = [], []
    for mode in modes():
        os.environ["MLGYM_ISOLATION"] = mode
        isolation.available.cache_clear()
        env = MLGymEnv(task, sandbox="local", max_steps=10**9)
        env.reset(seed=0)
        assert env.sandbox.isolation == mode, env.sandbox.isolation
        for _ in range(20):  # warm up
            env.step("true"), raw.run("true")

        def env_step(env=env):
            env.step("true")
            if len(env.state.trajectory) > 1000:  # keep the trajectory from growing without bound
                del env.state.trajectory[1:]

        med = measure({"env": env_step, "sandbox": lambda env=env: env.sandbox.exec("true", 10),
                       "fresh": lambda: subprocess.run(["bash", "-c", "true"], check=True),
                       "pipe": lambda: raw.run("true"),
                       "pipe+": lambda: raw.run("", SANDBOX_LINE),
                       # a harness-side piece of sandbox.exec: it reads the cgroup's OOM count once per command
                       "oom": lambda env=env: env.sandbox._oom_kills()}, rounds, per)
        env.close()
        vs_fresh, vs_pipe = med["env"] / med["fresh"], med["env"] / med["pipe"]
        rows.append((mode, med, vs_fresh, vs_pipe, med["sandbox"] / med["pipe"]))
        results.append(f"{mode}: env/fresh={vs_fresh:.3f}x ({verdict(vs_fresh <= 0.15)}) "
                       f"env/pipe={vs_pipe:.2f}x ({verdict(vs_pipe <= 5)})")
    raw.close()
    os.environ.pop("MLGYM_ISOLATION", None)
    isolation.available.cache_clear()
    return rows, results


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    per = {"env": 40, "sandbox": 40, "fresh": 10, "pipe": 40, "pipe+": 40, "oom": 40} if args.quick else \
          {"env": 200, "sandbox": 200, "fresh": 40, "pipe": 200, "pipe+": 200, "oom": 200}
    rounds = 5 if args.quick else 30
    everywhere = os.sched_getaffinity(0)
    pinned = run(per, rounds, {min(everywhere)})
    free = run(per, rounds, everywhere)

    print(f"step_local: medians in ms over {rounds} interleaved rounds "
          f"(per round: {', '.join(f'{k} x{v}' for k, v in per.items())})")
    print(f"{'cpus':<8} {'isolation':<9} {'env.step':>9} {'sandbox':>9} {'fresh':>9} {'pipe':>9} {'pipe+':>9} "
          f"{'oom':>7} {'env/fresh':>10} {'(<=0.15)':>8} {'env/pipe':>9} {'(<=5)':>6} {'sbx/pipe':>9} {'env-sbx':>8}")
    for cpus, (rows, _) in (("one core", pinned), ("free", free)):
        for mode, m, vf, vp, sp in rows:
            print(f"{cpus:<8} {mode:<9} {m['env']:9.3f} {m['sandbox']:9.3f} {m['fresh']:9.3f} {m['pipe']:9.3f} "
                  f"{m['pipe+']:9.3f} {m['oom']:7.3f} {vf:9.3f}x {verdict(vf <= 0.15):>8} {vp:8.2f}x "
                  f"{verdict(vp <= 5):>6} {sp:8.2f}x {m['env'] - m['sandbox']:8.3f}")
    print("one core: harness and shells pinned to one CPU (the judged figures); free: unpinned, where each")
    print("  shell's wake-ups land on the same or the other core by the scheduler's choice (see the docstring)")
    print("sbx/pipe: the sandbox alone over the raw pipe; pipe+ vs pipe: what the wrapper line costs in bash")
    print("oom: the cgroup OOM-count read sandbox.exec makes per command (part of 'sandbox')")
    print("env-sbx: what the env and tool layer add per step on top of the sandbox (ms)")
    print("RESULT step_local: one core: " + "; ".join(pinned[1]) + " | free: " + "; ".join(free[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
