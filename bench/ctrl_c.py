"""How fast Ctrl-C stops a run: SIGINT to the process group of `pytest tasks -n 2` while two
episodes are blocked mid-step (`sleep`), until pytest has exited (its sandboxes killed, the partial
report written). The figure tests/security/test_faults.py used to assert (< 10 s); there it is
only checked for a hang, since a loaded machine is 5-10x slower.

Per sandbox (local, local with MLGYM_ISOLATION=none, docker where an engine answers): a project
with the tiny test task and four replay agents (two finish, two block), run and interrupted
`repeat` times; the median seconds from SIGINT to exit. Target: < 10 s each on an idle machine.
Usage: python bench/ctrl_c.py [--quick]
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 10.0
AGENTS = {"ok1": "echo 7 > answer.txt", "slow1": "sleep 1000.{tok}1", "ok2": "echo 7 > answer.txt",
          "slow2": "sleep 1000.{tok}2"}


def project(base: Path, tok: str) -> Path:
    """A user's layout: tasks/tiny, the benchmark test, agents/ with one replay agent each."""
    shutil.copytree(ROOT / "tests" / "data" / "tasks" / "tiny", base / "tasks" / "tiny")
    shutil.copy(ROOT / "tasks" / "test_bench.py", base / "tasks" / "test_bench.py")
    (base / "agents").mkdir()
    for name, action in AGENTS.items():
        (base / "agents" / f"{name}.jsonl").write_text(json.dumps({"action": action.format(tok=tok)}) + "\n")
        (base / "agents" / f"{name}.yaml").write_text(f"policy: replay\ntrajectory: {name}.jsonl\n")
    return base


def blocked(tok: str) -> bool:
    """A host process has the token in its command line (an episode is in its blocking step)."""
    for e in os.listdir("/proc"):
        try:
            if e.isdigit() and tok.encode() in Path(f"/proc/{e}/cmdline").read_bytes():
                return True
        except OSError:
            continue
    return False


def once(sandbox: str, mode: str | None) -> float:
    """Seconds from SIGINT to pytest's exit, for one interrupted run."""
    tok = "".join(secrets.choice("0123456789") for _ in range(12))
    with tempfile.TemporaryDirectory(prefix="mlgym-bench-ctrlc-") as d:
        base = project(Path(d), tok)
        env = {**os.environ, "MLGYM_CACHE_DIR": str(base / "cache"), "PYTEST_ADDOPTS": "-p no:anyio -p no:benchmark",
               **({"MLGYM_ISOLATION": mode} if mode else {})}
        argv = [sys.executable, "-m", "pytest", "tasks", *(f"--agent={a}" for a in AGENTS), f"--sandbox={sandbox}",
                "-n", "2", "-p", "no:cacheprovider"]
        results = base / "reports" / "results.jsonl"
        with open(base / "out.txt", "wb") as out:
            proc = subprocess.Popen(argv, cwd=base, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        try:
            end = time.monotonic() + 300
            while not (results.exists() and results.read_text().count("\n") == 2 and blocked(tok)):
                if time.monotonic() > end or proc.poll() is not None:
                    raise SystemExit(f"{sandbox}: the run never blocked:\n{(base / 'out.txt').read_text()[-2000:]}")
                time.sleep(0.05)
            time.sleep(0.3)
            os.killpg(proc.pid, signal.SIGINT)
            t0 = time.monotonic()
            proc.wait(timeout=600)
            return time.monotonic() - t0
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def docker_answers() -> bool:
    return shutil.which("docker") is not None and subprocess.run(["docker", "info"], capture_output=True,
                                                                 check=False).returncode == 0


def main(argv: list[str]) -> int:
    repeat = 1 if "--quick" in argv else 3
    variants = [("local", "local", None), ("local-none", "local", "none")]
    if docker_answers():
        variants.append(("docker", "docker", None))
    parts = []
    for name, sandbox, mode in variants:
        runs = [once(sandbox, mode) for _ in range(repeat)]
        med = statistics.median(runs)
        print(f"{name:11s} SIGINT to exit: median {med:5.2f} s  runs {', '.join(f'{x:.2f}' for x in runs)}")
        parts.append(f"{name} {med:.2f} s {'PASS' if med < TARGET_S else 'MISS'}")
    load = os.getloadavg()[0]
    print(f"RESULT ctrl_c: {'; '.join(parts)} (target < {TARGET_S:g} s; load {load:.1f} on {os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
