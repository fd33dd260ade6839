"""Write the training budget of one task size for rl_breakout.

Usage: python prepare.py --size lite|full --out OUT

The environment is gymnax's Breakout-MinAtar simulator, so there is no data to load at either
size (and no MLGYM_DATA_DIR): the sizes differ only in the training budget. OUT/public/budget.json
lands in the workspace as data/budget.json, which train.py reads.
  lite: 1M env steps per training seed (train.py's TOTAL_STEPS x scale 1), minutes on 2 CPU cores.
  full: 10M env steps per training seed (scale 10), the budget of the published PPO baseline
        (gymnax-blines' Breakout-MinAtar config, used by MLGym-Bench: num_train_steps 1e7).
"""
import argparse
import json
import os
import sys

LITE_STEPS = 1_000_000  # = TOTAL_STEPS in workspace/train.py
BUDGETS = {
    "lite": {"size": "lite", "scale": 1, "env_steps_per_seed": LITE_STEPS, "seeds": 3, "wall_clock_s": 1200},
    "full": {"size": "full", "scale": 10, "env_steps_per_seed": 10 * LITE_STEPS, "seeds": 3, "wall_clock_s": 1200},
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    if args.size not in BUDGETS:
        sys.exit(f"prepare.py: unknown size {args.size!r}; use lite or full")
    os.makedirs(os.path.join(args.out, "private"), exist_ok=True)
    os.makedirs(os.path.join(args.out, "public"), exist_ok=True)
    with open(os.path.join(args.out, "public", "budget.json"), "w") as f:
        json.dump(BUDGETS[args.size], f, indent=1)
        f.write("\n")
    print(f"{args.size}: {BUDGETS[args.size]['env_steps_per_seed']:,} env steps per seed -> {args.out}")


if __name__ == "__main__":
    main()
