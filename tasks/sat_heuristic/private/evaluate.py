"""Evaluator for the sat_heuristic task: decisions the trusted DPLL needs with the agent's heuristic.

The solver is the task's workspace/solver.py (declared ``shared`` in task.yaml: the task folder's
pristine copy, never the agent's), run here. Only the agent's heuristic runs elsewhere: in a
sandbox of its own (pytest_mlgym.sdk.untrusted), called once per decision with the arguments the
workspace solver passes. The harness counts the CPU time of all its processes together (detached
ones too) and stops it past CPU_BUDGET_S.

Splits: private/test/instances.json (the recorded score) and private/dev/instances.json (a fifth as
many instances from another seed of the same generator: what validate shows), each solved by a
fresh process of the heuristic (no state carried from one split to the other), each under the
budgets below. Metric ``cost`` = total decisions (heuristic calls) over a split's instances: lower
is better, deterministic (no wall time in it). Invalid: an illegal decision (assigned or
out-of-range variable, non-bool value, not a pair), an exception in the heuristic, more than
MAX_DECISIONS decisions in a split, the heuristic's process using more than CPU_BUDGET_S seconds
of CPU time in a split (or the evaluation more than WALL_BUDGET_S of wall time), or an answer
contradicting the instance's label (only a solver bug could cause that; checked anyway).
"""
import json
import os
import time

from pytest_mlgym.sdk import Invalid, evaluator, readers
from pytest_mlgym.sdk.untrusted import Untrusted, UntrustedError

# Per size and split: the CPU time the heuristic's process may use (CPU, not wall time, so that a
# busy machine does not turn a valid heuristic invalid; the baseline needs a small fraction of it),
# and a deterministic cap on the number of decisions (lite ~8x, full ~4x the baseline's test cost).
CPU_BUDGET_S = {"lite": 30.0, "full": 300.0}
MAX_DECISIONS = {"lite": 40_000, "full": 500_000}
WALL_BUDGET_S = 900.0  # backstop for the whole evaluation, both splits (task.yaml evaluation_s is 960)
MAX_ARTEFACT_BYTES = 4 << 20


def solve_all(solver, path, data, split, seed, cpu_budget, cap, deadline) -> dict:
    n, instances = data["n_vars"], data["instances"]
    totals = {"cost": 0, "conflicts": 0, "sat": 0, "unsat": 0}
    start = time.monotonic()
    with Untrusted(path, seed=seed, budget_s=round(max(1.0, deadline - start), 1), cpu_s=cpu_budget) as agent:
        for i, inst in enumerate(instances):
            where = f"{split} instance {i}"

            def check(decision, value):
                try:
                    return solver.check_decision(decision, value)
                except solver.HeuristicError as e:
                    raise Invalid(f"{where}, decision {dpll.decisions + 1}: {e}") from None

            def heuristic(*args):
                if totals["cost"] + dpll.decisions >= cap:
                    raise Invalid(f"more than {cap} decisions in total (at {where}); the baseline needs far fewer")
                try:
                    return agent.call("heuristic", *args)
                except UntrustedError as e:
                    raise Invalid(f"{where}: {e}") from None

            dpll = solver.DPLL(n, inst["clauses"], heuristic, check=check)
            sat = dpll.solve()
            if sat != inst["sat"] or (sat and not solver.satisfies(inst["clauses"], dpll.value)):
                raise Invalid(f"{where}: wrong answer {'SAT' if sat else 'UNSAT'}")
            totals["cost"] += dpll.decisions
            totals["conflicts"] += dpll.conflicts
            totals["sat" if sat else "unsat"] += 1
        totals["heuristic_cpu_s"] = round(agent.cpu_seconds(), 2)  # informative only; not the metric
    totals["instances"] = len(instances)
    totals["seconds"] = round(time.monotonic() - start, 2)  # informative only; not the metric
    return totals


def score(ctx: evaluator.Context) -> dict:
    solver = ctx.import_shared("solver.py")
    size = ctx.size if ctx.size in CPU_BUDGET_S else "lite"
    # Overrides for the task's tests only (the harness runs evaluators with a clean environment).
    cpu_budget = float(os.environ.get("SAT_HEURISTIC_CPU_S") or CPU_BUDGET_S[size])
    cap = int(os.environ.get("SAT_HEURISTIC_MAX_DECISIONS") or MAX_DECISIONS[size])
    deadline = time.monotonic() + float(os.environ.get("SAT_HEURISTIC_WALL_S") or WALL_BUDGET_S)
    data = {split: json.loads(ctx.private("instances.json", split).read_text()) for split in ("test", "dev")}
    path = readers.regular_file(ctx.artefact, MAX_ARTEFACT_BYTES)
    try:
        return {split: solve_all(solver, path, data[split], split, ctx.seed, cpu_budget, cap, deadline)
                for split in ("test", "dev")}
    except RecursionError:
        raise Invalid("evaluation error: recursion too deep") from None


if __name__ == "__main__":
    evaluator.run(score)
