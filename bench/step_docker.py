"""Cost of one agent step on the docker sandbox, as ratios measured side by side in one run.

Variants, interleaved round by round (the machine is shared and noisy), medians reported:
  env      MLGymEnv.step("true") with sandbox="docker" (the tiny test task)
  sandbox  env.sandbox.exec("true", 10) alone
  exec     subprocess.run(["docker", "exec", <that container>, "true"]) (a new exec per command)
  raw      a raw persistent shell in the same container through one long-lived `docker exec -i`,
           ended by a done-marker

Targets: env <= 0.03x docker exec, env <= 5x raw shell.   Usage: python bench/step_docker.py [--quick]
Skips (exit 0, with a message) when no Docker Engine answers.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from step_local import RawPipe, measure, verdict

from pytest_mlgym.task import load_task


def engine_error() -> str | None:
    try:
        from pytest_mlgym.sandbox import docker as backend
        backend.check()
        return None
    except Exception as e:  # noqa: BLE001 - any way of not having an engine is a skip
        return f"{type(e).__name__}: {e}"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if why := engine_error():
        print(f"step_docker: SKIPPED, no usable Docker Engine ({why})")
        print("RESULT step_docker: skipped (no Docker Engine)")
        return 0
    rounds = 5 if args.quick else 20
    per = {"env": 40, "sandbox": 40, "exec": 2, "raw": 40} if args.quick else \
          {"env": 100, "sandbox": 100, "exec": 5, "raw": 100}

    from pytest_mlgym.env import MLGymEnv
    env = MLGymEnv(load_task(ROOT / "tests/data/tasks/tiny"), sandbox="docker", max_steps=10**9)
    env.reset(seed=0)
    try:
        cid = env.sandbox.container.id
        uid = f"{env.sandbox.container.attrs['Config'].get('User') or '0'}"
        raw = RawPipe(["docker", "exec", "-i", "-u", uid, cid, "bash", "--noprofile", "--norc"])
        for _ in range(20):
            env.step("true"), raw.run("true")

        def env_step():
            env.step("true")
            if len(env.state.trajectory) > 1000:
                del env.state.trajectory[1:]

        med = measure({"env": env_step, "sandbox": lambda: env.sandbox.exec("true", 10),
                       "exec": lambda: subprocess.run(["docker", "exec", cid, "true"], check=True),
                       "raw": lambda: raw.run("true")}, rounds, per)
        raw.close()
    finally:
        env.close()
    vs_exec, vs_raw = med["env"] / med["exec"], med["env"] / med["raw"]
    print(f"step_docker: medians in ms over {rounds} interleaved rounds "
          f"(per round: {', '.join(f'{k} x{v}' for k, v in per.items())}); container {cid[:12]}")
    print(f"{'env.step':>9} {'sandbox':>9} {'exec':>9} {'raw':>9} {'env/exec':>9} {'(<=0.03)':>8} "
          f"{'env/raw':>8} {'(<=5)':>6} {'sbx/raw':>8} {'env-sbx':>8}")
    print(f"{med['env']:9.3f} {med['sandbox']:9.3f} {med['exec']:9.3f} {med['raw']:9.3f} {vs_exec:8.4f}x "
          f"{verdict(vs_exec <= 0.03):>8} {vs_raw:7.2f}x {verdict(vs_raw <= 5):>6} {med['sandbox'] / med['raw']:7.2f}x "
          f"{med['env'] - med['sandbox']:8.3f}")
    print(f"RESULT step_docker: env.step={med['env']:.3f}ms env/exec={vs_exec:.4f}x ({verdict(vs_exec <= 0.03)}) "
          f"env/raw={vs_raw:.2f}x ({verdict(vs_raw <= 5)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
