"""Reinforcement learning on a research task: REINFORCE over candidate edits of battle_of_sexes.

The policy is a softmax over a few action templates (edits of the baseline ``strategy.py``, the
text actions an agent would send). Each episode runs in ``gymnasium.make("mlgym/battle_of_sexes")``:
reset, the sampled edit, ``validate``; its return is the env's reward, the gain in the best
normalised score (0 = the baseline, 1 = the reference solution), scored by the task's trusted evaluator. Episodes
run two at a time in Gymnasium's async vector env. Each iteration prints the batch's mean return;
the policy learns to prefer the edit that makes the row player always play its favourite move.

    python examples/rl_battle_of_sexes.py            # 10 iterations x 8 episodes, 30-60 s on 2 cores
    python examples/rl_battle_of_sexes.py --quick    # 3 x 4, a few seconds
"""
from __future__ import annotations

import argparse
import time

import gymnasium
import numpy as np

import pytest_mlgym.env  # noqa: F401  (registers mlgym/<task-id>)


def knobs(**values) -> str:
    """A shell command that sets constants at the top of strategy.py."""
    return "sed -i " + " ".join(f"-e 's/^{k} = .*/{k} = {v}/'" for k, v in values.items()) + " strategy.py"


TEMPLATES = {
    "keep the baseline": "true",
    "always follow the opponent": knobs(P_FOLLOW=1.0),
    "prefer move 1": knobs(FAVOURITE=1),
    "always play 1": knobs(FAVOURITE=1, P_OPEN_FAVOURITE=1.0, P_FOLLOW=0.0),
    "always play 0": knobs(FAVOURITE=0, P_OPEN_FAVOURITE=1.0, P_FOLLOW=0.0),
}


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 iterations of 4 episodes (for tests)")
    parser.add_argument("--iterations", type=int, default=None)
    parser.add_argument("--episodes", type=int, default=None, help="episodes per iteration (a multiple of --envs)")
    parser.add_argument("--envs", type=int, default=2, help="environments run in parallel")
    parser.add_argument("--lr", type=float, default=4.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    iterations = args.iterations or (3 if args.quick else 10)
    episodes = args.episodes or (4 if args.quick else 8)
    names, actions = list(TEMPLATES), list(TEMPLATES.values())
    rng = np.random.default_rng(args.seed)
    logits = np.zeros(len(actions))
    t0 = time.monotonic()
    envs = gymnasium.make_vec("mlgym/battle_of_sexes", num_envs=args.envs, vectorization_mode="async",
                              vector_kwargs={"shared_memory": False}, max_steps=5)
    try:
        for it in range(1, iterations + 1):
            chosen, returns = [], []
            while len(returns) < episodes:
                probs = softmax(logits)
                picks = rng.choice(len(actions), size=args.envs, p=probs)
                envs.reset(seed=int(rng.integers(1 << 31)))
                total = np.zeros(args.envs)
                for step in ([actions[i] for i in picks], ["validate"] * args.envs):
                    _, reward, _, _, _ = envs.step(tuple(step))
                    total += reward
                chosen += list(picks)
                returns += list(total)
            returns_arr = np.array(returns)
            advantage = returns_arr - returns_arr.mean()  # the batch mean as the baseline
            grad = np.zeros_like(logits)
            probs = softmax(logits)
            for a, adv in zip(chosen, advantage):
                grad += adv * (np.eye(len(actions))[a] - probs)  # d log softmax(a) / d logits
            logits += args.lr * grad / len(chosen)
            probs = softmax(logits)
            print(f"iteration {it}: mean return {returns_arr.mean():.3f}  "
                  f"p(best edit) {probs.max():.2f} ({names[int(probs.argmax())]})  "
                  f"[{time.monotonic() - t0:.0f} s]", flush=True)
    finally:
        envs.close()
    print("learned policy: " + ", ".join(f"{n} {p:.2f}" for n, p in sorted(zip(names, softmax(logits)),
                                                                             key=lambda x: -x[1])))
    print(f"preferred edit: {names[int(np.argmax(logits))]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
