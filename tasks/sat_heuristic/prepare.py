"""Generate the random 3-SAT instances of the sat_heuristic task.

Usage: python prepare.py --size lite|full --out OUT [--count N]   (pytest_mlgym.sdk.prepare)

Writes OUT/public/instances.json (the development set, shown to the agent, with answers),
OUT/private/test/instances.json (the hidden test set: the recorded score) and
OUT/private/dev/instances.json (a smaller hidden set, a fifth of the test set's size: what the
agent's validate shows). All sizes are generated here from a fixed seed; no downloaded data is
needed (MLGym never published its instance file).

Generator (uniform random 3-SAT near the satisfiability threshold): instance i of set s
(0 = public development set, 1 = hidden test, 2 = hidden dev) with n variables and
m = round(4.26 n) clauses uses numpy.random.default_rng([SEED, n, s, i]); each clause draws 3
distinct variables (rng.choice(n, 3, replace=False) + 1) and then 3 signs (rng.integers(0, 2, 3);
1 = positive). Each instance is labelled SAT/UNSAT by the task's DPLL (workspace/solver.py,
declared shared in task.yaml: the evaluator uses the same file) with a strong heuristic; every
SAT label is checked against the model found. Same bytes on every run.
"""
import json
import os
from collections import defaultdict

import numpy as np

from pytest_mlgym.sdk import prepare

SEED = 2026
RATIO = 4.26
SIZES = {"lite": {"n_vars": 60, "count": 50}, "full": {"n_vars": 100, "count": 100}}
SETS = {"public": 0, "test": 1, "dev": 2}  # set index in the generator's seed
DEV_FRACTION = 0.2  # the hidden dev set has a fifth as many instances as the test set


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


def label(solver, n, split, count):
    instances = []
    for i in range(count):
        clauses = generate(n, split, i)
        dpll = solver.DPLL(n, clauses, labeller)
        sat = dpll.solve()
        if sat and not solver.satisfies(clauses, dpll.value):
            raise SystemExit(f"prepare.py: labelling bug on instance {i} of split {split}")
        instances.append({"sat": sat, "clauses": clauses})
    # the public file does not name the seeds: the hidden sets must not be regenerable from it
    generator = (f"uniform random 3-SAT, seed [{SEED}, n_vars, split {split}, index]" if split else
                 f"uniform random 3-SAT, clauses/variables {RATIO}, 3 distinct variables per clause")
    return {"generator": generator,
            "n_vars": n, "n_clauses": round(RATIO * n), "instances": instances}


def write(obj, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        # one instance per line: readable, and the same bytes on every run
        f.write("{" + ", ".join(f'"{k}": {json.dumps(v)}' for k, v in obj.items() if k != "instances"))
        f.write(', "instances": [\n')
        f.write(",\n".join(json.dumps(inst, separators=(",", ":")) for inst in obj["instances"]))
        f.write("\n]}\n")


def build(ctx: prepare.Context) -> str:
    solver = ctx.import_shared("solver.py")
    n, count = SIZES[ctx.size]["n_vars"], ctx.options["count"] or SIZES[ctx.size]["count"]
    where = {"public": ctx.public, "test": ctx.private / "test", "dev": ctx.private / "dev"}
    counts = {"public": count, "test": count, "dev": max(1, round(DEV_FRACTION * count))}
    lines = []
    for name, index in SETS.items():
        data = label(solver, n, index, counts[name])
        write(data, os.path.join(where[name], "instances.json"))
        n_sat = sum(inst["sat"] for inst in data["instances"])
        lines.append(f"{name} {counts[name]} ({n_sat} SAT)")
    return f"{n} variables, {round(RATIO * n)} clauses: " + ", ".join(lines)


if __name__ == "__main__":
    prepare.run(build, sizes=tuple(SIZES), options={"count": (int, "only the first COUNT instances of each set "
                                                                   "(a fifth of it for dev; for quick tests)")})
