"""Parallel scaling and docker spread.

1. The lite suite's quick tasks with the baseline agent
   (`pytest tasks --agent=baseline -m "not slow" -n N`) at -n 1 vs -n 2, interleaved, repeated;
   medians and the speed-up (target >= 1.8x on 2 cores). Then the same with `--seeds 3`: three
   times the episodes for the same fixed costs (interpreter and plugin start-up, worker start-up,
   report.html, exit), which shows how much of the gap those fixed costs are.
2. With root and dockerd: a second local dockerd (own socket, data and exec roots,
   --bridge=none --iptables=false) and docker episodes over both engines
   (`--sandbox docker --docker-host A --docker-host B --seeds 4 -n 2 -k "prisoners_dilemma or blotto"`);
   the `sandbox_host` of every record in results.jsonl shows the spread. The second dockerd is
   stopped and its files removed afterwards.
Usage: python bench/parallel.py [--quick] [--no-docker]
"""
from __future__ import annotations

import collections
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_SPEEDUP = 1.8
SUITE = [sys.executable, "-m", "pytest", "tasks", "--agent=baseline", "-m", "not slow", "-p", "no:cacheprovider", "-q"]


def run_suite(n: int, seeds: int = 1) -> tuple[float, int]:
    with tempfile.TemporaryDirectory(prefix="mlgym-bench-") as d:
        t0 = time.perf_counter()
        p = subprocess.run([*SUITE, "-n", str(n), "--seeds", str(seeds), "--mlgym-report-dir", d], cwd=ROOT,
                           check=False, capture_output=True, text=True)
        t = time.perf_counter() - t0
        if p.returncode != 0:
            raise SystemExit(f"-n {n} failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-2000:]}")
        records = Path(d, "results.jsonl").read_text().splitlines()
    return t, len(records)


def scaling(repeat: int, seeds: int = 1) -> str:
    times: dict[int, list[float]] = {1: [], 2: []}
    episodes = 0
    for i in range(repeat):  # interleaved, alternating which goes first
        for n in ((1, 2) if i % 2 == 0 else (2, 1)):
            t, episodes = run_suite(n, seeds)
            times[n].append(t)
    m1, m2 = statistics.median(times[1]), statistics.median(times[2])
    for n in (1, 2):
        print(f"-n {n}: median {statistics.median(times[n]):6.2f} s  runs {', '.join(f'{t:.2f}' for t in times[n])}")
    speedup = m1 / m2
    print(f"{episodes} episodes (quick tasks, baseline agent, --seeds {seeds}); speed-up -n 2 over -n 1: "
          f"{speedup:.2f}x (target >= {TARGET_SPEEDUP}x on 2 cores; {os.cpu_count()} CPUs here)")
    return (f"seeds {seeds}: -n 1 {m1:.1f} s, -n 2 {m2:.1f} s, speed-up {speedup:.2f}x (target >= {TARGET_SPEEDUP}x) "
            f"{'PASS' if speedup >= TARGET_SPEEDUP else 'MISS'}")


def docker_spread() -> str:
    if not shutil.which("dockerd") or not shutil.which("docker") or os.geteuid() != 0:
        print("docker spread: skipped (needs root, dockerd and docker)")
        return "docker spread skipped"
    first = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if subprocess.run(["docker", "-H", first, "info"], check=False, capture_output=True).returncode != 0:
        print(f"docker spread: skipped (no engine answers at {first})")
        return "docker spread skipped"
    d = Path(tempfile.mkdtemp(prefix="mlgym-dockerd-", dir="/tmp"))
    second = f"unix://{d}/docker.sock"
    with open(d / "log", "wb") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(["dockerd", "--host", second, "--data-root", f"{d}/root", "--exec-root", f"{d}/exec",
                                 "--pidfile", f"{d}/docker.pid", "--bridge=none", "--iptables=false"],
                                stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while subprocess.run(["docker", "-H", second, "info"], check=False, capture_output=True).returncode != 0:
            if time.monotonic() > deadline or proc.poll() is not None:
                print(f"docker spread: the second dockerd did not start:\n{(d / 'log').read_text()[-1500:]}")
                return "docker spread: second dockerd did not start"
            time.sleep(0.5)
        with tempfile.TemporaryDirectory(prefix="mlgym-bench-") as rep:
            t0 = time.perf_counter()
            p = subprocess.run([sys.executable, "-m", "pytest", "tasks", "--agent=baseline", "--sandbox", "docker",
                                "--docker-host", first, "--docker-host", second, "--seeds", "4", "-n", "2",
                                "-k", "prisoners_dilemma or blotto", "-p", "no:cacheprovider", "-q",
                                "--mlgym-report-dir", rep], cwd=ROOT, check=False, capture_output=True, text=True)
            t = time.perf_counter() - t0
            path = Path(rep, "results.jsonl")
            records = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
        print(f"docker episodes over two engines: pytest exit {p.returncode}, {len(records)} episodes, {t:.1f} s")
        if p.returncode != 0:
            print(p.stdout[-3000:], p.stderr[-1500:], sep="\n")
        spread = collections.Counter(r.get("sandbox_host") for r in records)
        for r in records:
            print(f"  {r['task']:<18} seed {r['seed']}  status {r['status']:<10} sandbox {r.get('sandbox')}  "
                  f"sandbox_host {r.get('sandbox_host')}")
        for host, k in spread.items():
            print(f"  {host}: {k} episodes")
        both = set(spread) == {first, second}
        return (f"docker {len(records)} episodes over {len(spread)} engine(s) "
                f"({', '.join(f'{k} on {h}' for h, k in spread.items())}) {'PASS' if both else 'MISS'}")
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(d, ignore_errors=True)
        print(f"second dockerd stopped (exit {proc.returncode}) and {d} removed")


def main(argv: list[str]) -> int:
    repeat = 1 if "--quick" in argv else 3
    summary = scaling(repeat) + "; " + scaling(repeat, seeds=3)
    spread = "docker spread not run (--no-docker)" if "--no-docker" in argv else docker_spread()
    print(f"RESULT parallel: {summary}; {spread}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
