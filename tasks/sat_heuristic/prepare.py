"""Generate the random 3-SAT instances of the sat_heuristic task.

Usage: python prepare.py --size lite|full --out OUT [--count N]

Writes OUT/public/instances.json (the development set, shown to the agent, with answers) and
OUT/private/instances.json (the hidden test set that is scored). Both sizes are generated here
from a fixed seed; no downloaded data is needed (MLGym never published its instance file).

Generator (uniform random 3-SAT near the satisfiability threshold): instance i of split s
(0 = development, 1 = test) with n variables and m = round(4.26 n) clauses uses
numpy.random.default_rng([SEED, n, s, i]); each clause draws 3 distinct variables
(rng.choice(n, 3, replace=False) + 1) and then 3 signs (rng.integers(0, 2, 3); 1 = positive).
Each instance is labelled SAT/UNSAT by the task's own DPLL (private/dpll.py, a copy of the
workspace solver) with a strong heuristic; every SAT label is checked against the model found.
Same bytes on every run.
"""
import argparse
import json
import os
import sys
from collections import defaultdict

import numpy as np

sys.dont_write_bytecode = True  # no __pycache__ inside the task's private/ folder
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "private"))
from dpll import DPLL, satisfies  # noqa: E402

SEED = 2026
RATIO = 4.26
SIZES = {"lite": {"n_vars": 60, "count": 50}, "full": {"n_vars": 100, "count": 100}}


def generate(n, split, i):
    rng = np.random.default_rng([SEED, n, split, i])
    clauses = []
    for _ in range(round(RATIO * n)):
        variables = rng.choice(n, 3, replace=False) + 1
        signs = rng.integers(0, 2, 3)
        clauses.append([int(v) if s else -int(v) for v, s in zip(variables, signs)])
    return clauses


def labeller(clauses, assignment, conflict_count, history, level):
    """Two-sided Jeroslow-Wang with a product term (binary clauses weigh 5x ternary ones)."""
    score = defaultdict(float)
    for c in clauses:
        for lit in c:
            score[lit] += 5.0 ** -len(c)
    var = max(sorted({abs(l) for l in score}),
              key=lambda v: 1024 * score[v] * score[-v] + score[v] + score[-v])
    return var, score[var] >= score[-var]


def build(n, split, count):
    instances = []
    for i in range(count):
        clauses = generate(n, split, i)
        solver = DPLL(n, clauses, labeller)
        sat = solver.solve()
        if sat and not satisfies(clauses, solver.value):
            raise SystemExit(f"prepare.py: labelling bug on instance {i} of split {split}")
        instances.append({"sat": sat, "clauses": clauses})
    return {"generator": f"uniform random 3-SAT, seed [{SEED}, n_vars, split {split}, index]",
            "n_vars": n, "n_clauses": round(RATIO * n), "instances": instances}


def write(obj, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        # one instance per line: readable, and the same bytes on every run
        f.write("{" + ", ".join(f'"{k}": {json.dumps(v)}' for k, v in obj.items() if k != "instances"))
        f.write(', "instances": [\n')
        f.write(",\n".join(json.dumps(inst, separators=(",", ":")) for inst in obj["instances"]))
        f.write("\n]}\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", required=True, choices=sorted(SIZES))
    ap.add_argument("--out", required=True)
    ap.add_argument("--count", type=int, default=None,
                    help="only the first COUNT instances of each split (for quick tests)")
    args = ap.parse_args()
    n, count = SIZES[args.size]["n_vars"], args.count or SIZES[args.size]["count"]
    for split, where in ((0, "public"), (1, "private")):
        data = build(n, split, count)
        write(data, os.path.join(args.out, where, "instances.json"))
        n_sat = sum(inst["sat"] for inst in data["instances"])
        print(f"{where}: {count} instances, {n} variables, {data['n_clauses']} clauses, "
              f"{n_sat} SAT / {count - n_sat} UNSAT")


if __name__ == "__main__":
    main()
