"""Harness memory per idle sandbox, and evaluation cost per shipped task.

Memory: N idle episodes (MLGymEnv.reset on the tiny test task) are held open at once and the
growth is split by owner, from /proc (RSS double-counts shared pages, so PSS is shown too):
  python   this process's RSS growth (env, toolbox, sandbox objects, pipes)
  helpers  the processes the harness adds around the agent's shell: bwrap's two processes per
           sandbox (local), the `docker exec -i` client per sandbox (docker)
  shell    the agent's persistent bash (local; in docker it runs in the container)
  ctr      docker only: `docker stats --no-stream` memory of the containers, and the
           containerd shim per container (host side, found by the container id in its command line)
Harness memory = python + helpers (target < 20 MiB per sandbox); shell and container are the agent's.

Evaluation: pytest_mlgym.evaluation.run_evaluator on each task in tasks/ with the workspace's
sample artefact (or the starter artefact, else reference/<artefact>), for tasks whose data is
already prepared in the cache (never prepared here: preparing downloads and can take minutes).
--quick: N=20 local, N=4 docker, evaluation of the tasks without data only.
Usage: python bench/memory.py [--quick] [--no-docker] [--no-eval]
"""
from __future__ import annotations

import argparse
import gc
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_mlgym.task import default_cache_dir, discover, load_task

MiB = 1 << 20


def proc_kib(pid: int | str, key: str = "VmRSS", file: str = "status") -> int:
    """A "<key>: <n> kB" field of /proc/<pid>/<file> (0 when the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/{file}").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    return kids


def tree(pid: int, kids: dict[int, list[int]]) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out


def self_rss() -> int:
    gc.collect()
    return proc_kib("self") * 1024


def measure_procs(by: dict[str, list[int]]) -> dict[str, tuple[int, int, int]]:
    return {name: (len(p), sum(proc_kib(x) for x in p) * 1024,
                             sum(proc_kib(x, "Pss", "smaps_rollup") for x in p) * 1024)
            for name, p in by.items()}


def run_local(n: int) -> tuple[float, str]:
    """Open n idle sandboxes, measure while they are open, close them; MiB of harness memory per sandbox."""
    from pytest_mlgym.env import MLGymEnv
    task = load_task(ROOT / "tests/data/tasks/tiny")
    warm = MLGymEnv(task, sandbox="local")
    warm.reset(seed=0), warm.step("true"), warm.close()
    base = self_rss()
    envs = []
    try:
        for i in range(n):
            env = MLGymEnv(task, sandbox="local")
            env.reset(seed=i)
            env.step("true")
            envs.append(env)
        time.sleep(0.3)
        grown = self_rss() - base
        kids = children_map()
        by: dict[str, list[int]] = {}
        for env in envs:
            for pid in tree(env.sandbox._proc.pid, kids):
                by.setdefault(comm(pid), []).append(pid)
        procs = measure_procs(by)
        mode = envs[0].sandbox.isolation
    finally:
        for env in envs:
            env.close()
    helpers = {k: v for k, v in procs.items() if k != "bash"}
    shell = procs.get("bash", (0, 0, 0))
    h_rss, h_pss = sum(v[1] for v in helpers.values()), sum(v[2] for v in helpers.values())
    print(f"local sandboxes: N={n} idle, isolation={mode}")
    print(f"  {'part':<28} {'procs':>5} {'RSS MiB':>9} {'PSS MiB':>9} {'RSS/sbx':>8} {'PSS/sbx':>8}")
    print(f"  {'python (this process, growth)':<28} {'':>5} {grown / MiB:9.2f} {'':>9} {grown / MiB / n:8.2f} {'':>8}")
    for name, (cnt, rss, pss) in sorted(procs.items()):
        role = "shell (agent's)" if name == "bash" else "helper"
        print(f"  {name + ' [' + role + ']':<28} {cnt:5d} {rss / MiB:9.2f} {pss / MiB:9.2f} "
              f"{rss / MiB / n:8.2f} {pss / MiB / n:8.2f}")
    harness = (grown + h_rss) / MiB / n
    harness_pss = (grown + h_pss) / MiB / n
    print(f"  harness per sandbox (python + helpers): {harness:.2f} MiB RSS, {harness_pss:.2f} MiB PSS; "
          f"+ shell {shell[1] / MiB / n:.2f} MiB RSS ({shell[2] / MiB / n:.2f} PSS)  target < 20 MiB: "
          f"{'PASS' if harness < 20 else 'MISS'}")
    return harness, (f"local={harness:.2f}MiB/sandbox (python+{'+'.join(sorted(helpers)) or 'no helpers'} RSS, "
                     f"{'PASS' if harness < 20 else 'MISS'} <20; +bash {shell[1] / MiB / n:.2f})")


def docker_stats(ids: list[str]) -> dict[str, int]:
    out = subprocess.run(["docker", "stats", "--no-stream", "--format", "{{.ID}} {{.MemUsage}}", *ids],
                         capture_output=True, text=True, timeout=120, check=False).stdout
    units = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "kB": 1000, "MB": 10**6, "GB": 10**9}
    res = {}
    for line in out.splitlines():
        cid, usage = line.split(" ", 1)
        used = usage.split("/")[0].strip()
        num = "".join(c for c in used if c.isdigit() or c == ".")
        res[cid] = int(float(num) * units.get(used[len(num):].strip(), 1))
    return res


def run_docker(n: int) -> str:
    try:
        from pytest_mlgym.sandbox import docker as backend
        backend.check()
    except Exception as e:  # noqa: BLE001
        print(f"docker sandboxes: SKIPPED, no usable Docker Engine ({type(e).__name__}: {str(e)[:160]})")
        return "docker=skipped"
    from pytest_mlgym.env import MLGymEnv
    task = load_task(ROOT / "tests/data/tasks/tiny")
    warm = MLGymEnv(task, sandbox="docker")
    warm.reset(seed=0), warm.step("true"), warm.close()
    base = self_rss()
    envs = []
    t0 = time.perf_counter()
    try:
        for i in range(n):
            env = MLGymEnv(task, sandbox="docker")
            env.reset(seed=i)
            env.step("true")
            envs.append(env)
        started = (time.perf_counter() - t0) / n
        time.sleep(0.5)
        grown = self_rss() - base
        kids = children_map()
        by: dict[str, list[int]] = {}
        for env in envs:
            for pid in tree(env.sandbox._proc.pid, kids):
                by.setdefault(comm(pid), []).append(pid)
        ids = [env.sandbox.container.id for env in envs]
        shims = []
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    cmd = Path(f"/proc/{d}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    continue
                if "containerd-shim" in cmd and any(c in cmd for c in ids):
                    shims.append(int(d))
        procs = measure_procs(by)
        shim = measure_procs({"containerd-shim": shims}) if shims else {}
        stats = docker_stats(ids)
    finally:
        t1 = time.perf_counter()
        for env in envs:
            env.close()
        closed = (time.perf_counter() - t1) / max(1, len(envs))
    c_total = sum(stats.values())
    h_rss, h_pss = sum(v[1] for v in procs.values()), sum(v[2] for v in procs.values())
    print(f"docker sandboxes: N={n} idle (start {started:.2f} s, close {closed:.2f} s each)")
    print(f"  {'part':<34} {'procs':>5} {'RSS MiB':>9} {'PSS MiB':>9} {'RSS/sbx':>8} {'PSS/sbx':>8}")
    print(f"  {'python (this process, growth)':<34} {'':>5} {grown / MiB:9.2f} {'':>9} {grown / MiB / n:8.2f}")
    for name, (cnt, rss, pss) in sorted(procs.items()):
        print(f"  {name + ' [exec -i client, helper]':<34} {cnt:5d} {rss / MiB:9.2f} {pss / MiB:9.2f} "
              f"{rss / MiB / n:8.2f} {pss / MiB / n:8.2f}")
    for name, (cnt, rss, pss) in shim.items():
        print(f"  {name + ' [engine side]':<34} {cnt:5d} {rss / MiB:9.2f} {pss / MiB:9.2f} "
              f"{rss / MiB / n:8.2f} {pss / MiB / n:8.2f}")
    print(f"  {'containers (docker stats)':<34} {len(stats):5d} {c_total / MiB:9.2f} {'':>9} {c_total / MiB / n:8.2f}")
    harness = (grown + h_rss) / MiB / n
    harness_pss = (grown + h_pss) / MiB / n
    print(f"  harness per sandbox (python + docker exec client): {harness:.2f} MiB RSS, {harness_pss:.2f} MiB PSS; "
          f"+ container {c_total / MiB / n:.2f} MiB (reported: the 20 MiB target is for local sandboxes)")
    return f"docker={harness:.2f}MiB/sandbox (python+docker-exec-client RSS, reported; " \
           f"+container {c_total / MiB / n:.2f})"


# -- evaluation cost ------------------------------------------------------------------------------
def cached(task, size: str):
    """The prepared data if the cache already holds it (the path Task.prepare uses), else None."""
    from pytest_mlgym.task import Prepared
    if not task.spec.prepare:
        return Prepared(None, None)
    digest = hashlib.sha256((task.path / task.spec.prepare).read_bytes()).hexdigest()[:12]
    out = default_cache_dir() / task.id / f"{size}-{digest}"
    return task.prepare(size) if (out / ".done").exists() else None


def artefact_of(task) -> tuple[Path | None, str]:
    spec = task.spec
    for src, what in ((spec.sample_artefact, "sample"), (spec.artefact, "starter")):
        if src and (task.workspace_dir / src.rstrip("/")).exists():
            return task.workspace_dir / src.rstrip("/"), what
    ref = task.path / "reference" / spec.artefact.rstrip("/")
    return (ref, "reference") if ref.exists() else (None, "")


def run_eval(quick: bool) -> str:
    from pytest_mlgym.evaluation import run_evaluator
    tasks, errors = discover([ROOT / "tasks"])
    size = "lite"
    print(f"evaluation cost per task (run_evaluator, size {size}, isolation as available):")
    print(f"  {'task':<28} {'artefact':<34} {'seconds':>8}  result")
    done, times = [], []
    for task in sorted(tasks, key=lambda t: (bool(t.spec.prepare), t.id)):
        art, what = artefact_of(task)
        if art is None:
            print(f"  {task.id:<28} {'-':<34} {'-':>8}  skipped: no sample/starter/reference artefact")
            continue
        if quick and task.spec.prepare:
            print(f"  {task.id:<28} {what + ' ' + art.name:<34} {'-':>8}  skipped in --quick (needs prepared data)")
            continue
        prepared = cached(task, size)
        if prepared is None:
            print(f"  {task.id:<28} {what + ' ' + art.name:<34} {'-':>8}  skipped: data not prepared "
                  f"(python -m pytest_mlgym prepare; downloads, minutes)")
            continue
        scratch = Path(tempfile.mkdtemp(prefix=f"bench-eval-{task.id}-"))
        try:
            dest = scratch / (Path(task.spec.artefact).name or "artefact")
            if art.is_dir():
                shutil.copytree(art, dest)
            else:
                shutil.copy2(art, dest)
            t = time.perf_counter()
            ev = run_evaluator(task, size, dest, prepared, scratch)
            s = time.perf_counter() - t
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        result = f"{task.spec.metric.name}={ev.score:.4g}" if ev.valid else f"invalid: {ev.reason[:70]}"
        print(f"  {task.id:<28} {what + ' ' + art.name:<34} {s:8.2f}  {result} "
              f"(limit {task.spec.limits.evaluation_s:g} s)")
        done.append((task.id, s))
        times.append(s)
    for name, err in errors.items():
        print(f"  {name:<28} not loadable: {str(err)[:80]}")
    if not times:
        return "eval=none"
    worst = max(done, key=lambda x: x[1])
    return f"eval {len(times)} tasks median={sorted(times)[len(times) // 2]:.2f}s max={worst[1]:.2f}s ({worst[0]})"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-docker", action="store_true")
    ap.add_argument("--no-eval", action="store_true")
    args = ap.parse_args()
    parts = []
    _, line = run_local(20)
    parts.append(line)
    if not args.no_docker:
        parts.append(run_docker(4 if args.quick else 20))
    if not args.no_eval:
        parts.append(run_eval(args.quick))
    print("RESULT memory: " + "; ".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
