"""DPLL SAT solver with a pluggable branching heuristic (unit propagation + pure literals).

The evaluator scores `heuristic.py` with a byte-identical copy of this file, so the number of
decisions you see here is exactly what the evaluator counts (the evaluator runs your heuristic in
a separate process and passes it copies of the same arguments).

    python solver.py                # run heuristic.py on every instance of data/instances.json
    python solver.py --first 10     # only the first 10 instances

Formula: a list of clauses; a clause is a list of non-zero ints (DIMACS literals: v means
"variable v is true", -v "variable v is false"); variables are 1..n_vars.
"""
import argparse
import json
import sys
import time


class HeuristicError(Exception):
    """The heuristic returned something that is not a legal decision; one-line reason."""


def check_decision(decision, value):
    """The (variable, value) pair a heuristic returned, validated; raises HeuristicError.
    numpy scalars count as the plain values they hold (the evaluator receives them that way)."""
    decision = _plain(decision)
    if isinstance(decision, (list, tuple)):
        decision = [_plain(x) for x in decision]
    if not isinstance(decision, (list, tuple)) or len(decision) != 2:
        raise HeuristicError(f"heuristic returned {_show(decision)}; expected a (variable, value) pair")
    var, val = decision
    if isinstance(var, bool) or not isinstance(var, int):
        raise HeuristicError(f"heuristic returned variable {_show(var)} ({type(var).__name__}); expected an int")
    if not 1 <= var < len(value):
        raise HeuristicError(f"heuristic returned variable {var}, outside 1..{len(value) - 1}")
    if value[var] is not None:
        raise HeuristicError(f"heuristic returned variable {var}, which is already assigned")
    if not isinstance(val, bool):
        raise HeuristicError(f"heuristic returned value {_show(val)} ({type(val).__name__}); expected True or False")
    return var, val


def _plain(x):
    return x.tolist() if hasattr(x, "tolist") else x


def _show(x):
    try:
        return repr(x)[:60]
    except Exception:
        return "<unprintable>"


class DPLL:
    """Chronological-backtracking DPLL.

    At every node: unit propagation, then pure-literal elimination, until neither applies. If a
    clause is falsified the node is a conflict; if every clause is satisfied the formula is SAT;
    otherwise the heuristic picks an unassigned variable and a value (one *decision*), the solver
    explores that branch and, if it fails, the opposite value.

    heuristic(clauses, assignment, conflict_count, assignment_history, level) -> (variable, value)
      clauses            the open clauses: those not yet satisfied, each reduced to its unassigned
                         literals (so each has 2 or 3 literals; unit clauses were propagated)
      assignment         list of length n_vars + 1; assignment[v] is True, False or None
                         (unassigned); assignment[0] is unused (None)
      conflict_count     conflicts met so far on this instance
      assignment_history every assigned literal, in the order it was assigned (decisions,
                         unit-propagated and pure literals alike)
      level              number of decisions on the current branch (0 at the root)
    """

    def __init__(self, n_vars, clauses, heuristic, check=check_decision):
        self.clauses = [tuple(c) for c in clauses]
        self.heuristic = heuristic
        self.check = check
        self.occurs = [[] for _ in range(2 * n_vars + 1)]  # occurs[lit] (negative lits wrap around)
        for c in self.clauses:
            for lit in c:
                self.occurs[lit].append(c)
        self.value = [None] * (n_vars + 1)
        self.trail = []  # assigned literals, in order
        self.decisions = 0
        self.conflicts = 0

    def solve(self):
        """True (SAT; self.value holds a model) or False (UNSAT)."""
        if any(not c for c in self.clauses):
            return False
        return self._search([c[0] for c in self.clauses if len(c) == 1], 0)

    def _search(self, queue, level):
        mark = len(self.trail)
        clauses = self._propagate(queue)
        if clauses is None:
            self.conflicts += 1
        elif not clauses:
            return True
        else:
            decision = self.heuristic(clauses, list(self.value), self.conflicts, list(self.trail), level)
            var, val = self.check(decision, self.value)
            self.decisions += 1
            for v in (val, not val):
                if self._search([var if v else -var], level + 1):
                    return True
        for lit in self.trail[mark:]:  # undo everything assigned at this node
            self.value[abs(lit)] = None
        del self.trail[mark:]
        return False

    def _propagate(self, queue):
        """Make the literals in queue true, then propagate units and pure literals.
        Returns the open clauses (reduced to their unassigned literals), or None on a conflict."""
        value, trail = self.value, self.trail
        while queue:  # unit propagation
            lit = queue.pop()
            v = value[abs(lit)]
            if v is not None:
                if v != (lit > 0):
                    return None
                continue
            value[abs(lit)] = lit > 0
            trail.append(lit)
            for c in self.occurs[-lit]:  # clauses that just lost a literal
                free, n_free = None, 0
                for l in c:
                    v = value[abs(l)]
                    if v is None:
                        free, n_free = l, n_free + 1
                    elif v == (l > 0):
                        break  # satisfied
                else:
                    if n_free == 0:
                        return None  # falsified
                    if n_free == 1:
                        queue.append(free)  # unit
        clauses = []
        for c in self.clauses:
            reduced = []
            for l in c:
                v = value[abs(l)]
                if v is None:
                    reduced.append(l)
                elif v == (l > 0):
                    break
            else:
                clauses.append(reduced)
        while True:  # pure literals: setting them true only satisfies clauses, never creates units
            lits = {l for c in clauses for l in c}
            pure = {l for l in lits if -l not in lits}
            if not pure:
                return clauses
            for l in sorted(pure, key=abs):
                value[abs(l)] = l > 0
                trail.append(l)
            clauses = [c for c in clauses if pure.isdisjoint(c)]


def satisfies(clauses, value):
    return all(any(value[abs(l)] == (l > 0) for l in c) for c in clauses)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="data/instances.json")
    ap.add_argument("--first", type=int, default=None, help="only the first N instances")
    args = ap.parse_args()
    sys.path.insert(0, ".")
    from heuristic import heuristic

    with open(args.data) as f:
        data = json.load(f)
    instances = data["instances"][:args.first]
    total = conflicts = 0
    start = time.perf_counter()
    for i, inst in enumerate(instances):
        solver = DPLL(data["n_vars"], inst["clauses"], heuristic)
        sat = solver.solve()
        if sat and not satisfies(inst["clauses"], solver.value) or sat != inst["sat"]:
            sys.exit(f"instance {i}: wrong answer {'SAT' if sat else 'UNSAT'}")
        total += solver.decisions
        conflicts += solver.conflicts
        print(f"instance {i:3d}: {'SAT  ' if sat else 'UNSAT'} decisions {solver.decisions:6d}")
    print(f"cost (total decisions) = {total} over {len(instances)} instances; "
          f"conflicts {conflicts}; {time.perf_counter() - start:.1f} s in-process")


if __name__ == "__main__":
    main()
