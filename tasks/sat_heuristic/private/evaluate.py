"""Evaluator for the sat_heuristic task.

Usage: python evaluate.py heuristic.py   (env MLGYM_PRIVATE_DATA, MLGYM_SIZE, MLGYM_SEED)

Solves every hidden test instance (MLGYM_PRIVATE_DATA/instances.json) with the trusted DPLL in
this folder (dpll.py, a byte-identical copy of the workspace's solver.py). Only the agent's
heuristic runs elsewhere: in a sandbox of its own (pytest_mlgym.sdk.untrusted), called once per
decision with the same arguments the workspace solver passes. The harness counts the CPU time of
all its processes together (detached ones too) and stops it past CPU_BUDGET_S.

Metric `cost` = total number of decisions (heuristic calls) over all instances: lower is better,
and deterministic (no wall time in it). Invalid: an illegal decision (assigned or out-of-range
variable, non-bool value, not a pair), an exception in the heuristic, more than MAX_DECISIONS
decisions, the heuristic's process using more than CPU_BUDGET_S seconds of CPU time (or the
evaluation more than WALL_BUDGET_S of wall time), or an answer contradicting the
instance's label (only a solver bug could cause that; checked anyway).
Last stdout line: {"cost": ..., ...} or {"invalid": reason}.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dpll import DPLL, HeuristicError, check_decision, satisfies  # noqa: E402

from pytest_mlgym.sdk.untrusted import Untrusted, UntrustedError  # noqa: E402

# Per size: the CPU time the heuristic's process may use in total (CPU, not wall time, so that a
# busy machine does not turn a valid heuristic invalid; the baseline needs a small fraction of
# it), and a deterministic cap on the total number of decisions (lite ~8x, full ~4x the baseline).
CPU_BUDGET_S = {"lite": 30.0, "full": 300.0}
MAX_DECISIONS = {"lite": 40_000, "full": 500_000}
WALL_BUDGET_S = 900.0  # backstop for the whole evaluation (task.yaml evaluation_s is 960)


class Invalid(Exception):
    pass


def run(path, data, size, seed):
    # Overrides for the task's tests only (the harness runs evaluators with a clean environment).
    cpu_budget = float(os.environ.get("SAT_HEURISTIC_CPU_S") or CPU_BUDGET_S[size])
    cap = int(os.environ.get("SAT_HEURISTIC_MAX_DECISIONS") or MAX_DECISIONS[size])
    wall_budget = float(os.environ.get("SAT_HEURISTIC_WALL_S") or WALL_BUDGET_S)
    n, instances = data["n_vars"], data["instances"]
    totals = {"cost": 0, "conflicts": 0, "sat": 0, "unsat": 0}
    try:
        with Untrusted(path, seed=seed, budget_s=wall_budget, cpu_s=cpu_budget) as agent:
            for i, inst in enumerate(instances):
                where = f"instance {i}"

                def check(decision, value):
                    try:
                        return check_decision(decision, value)
                    except HeuristicError as e:
                        raise Invalid(f"{where}, decision {solver.decisions + 1}: {e}") from None

                def heuristic(*args):
                    if totals["cost"] + solver.decisions >= cap:
                        raise Invalid(f"more than {cap} decisions in total (at {where}); the baseline "
                                      f"needs far fewer")
                    try:
                        return agent.call("heuristic", *args)
                    except UntrustedError as e:
                        raise Invalid(f"{where}: {e}") from None

                solver = DPLL(n, inst["clauses"], heuristic, check=check)
                sat = solver.solve()
                if sat != inst["sat"] or (sat and not satisfies(inst["clauses"], solver.value)):
                    raise Invalid(f"{where}: wrong answer {'SAT' if sat else 'UNSAT'}")
                totals["cost"] += solver.decisions
                totals["conflicts"] += solver.conflicts
                totals["sat" if sat else "unsat"] += 1
            totals["heuristic_cpu_s"] = round(agent.cpu_seconds(), 2)  # informative only; not the metric
    except UntrustedError as e:  # the import of heuristic.py failed
        raise Invalid(str(e)) from None
    return totals


def main():
    start = time.monotonic()
    if len(sys.argv) != 2:
        print(json.dumps({"invalid": "usage: evaluate.py heuristic.py"}))
        return
    path = os.path.abspath(sys.argv[1])
    size = os.environ.get("MLGYM_SIZE") or "lite"
    seed = int(os.environ.get("MLGYM_SEED") or 0)
    try:
        if not os.path.isfile(path) or os.path.islink(path):
            raise Invalid(f"artefact {os.path.basename(path)} not found")
        with open(os.path.join(os.environ["MLGYM_PRIVATE_DATA"], "instances.json")) as f:
            data = json.load(f)
        result = run(path, data, size if size in CPU_BUDGET_S else "lite", seed)
        result["instances"] = len(data["instances"])
        result["seconds"] = round(time.monotonic() - start, 2)  # informative only; not the metric
    except (Invalid, UntrustedError) as e:
        result = {"invalid": " ".join(str(e).split())[:300]}
    except RecursionError:
        result = {"invalid": "evaluation error: recursion too deep"}
    except Exception as e:  # never crash on a bad artefact
        result = {"invalid": f"evaluation error: {type(e).__name__}: {e}"[:300]}
    # The leading newline ends any partial line on stdout, so the last line is our JSON object.
    print("\n" + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
