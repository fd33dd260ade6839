"""Reference heuristic: two-sided Jeroslow-Wang with a product term (as in POSIT / satz).

Each literal gets a weight from the open clauses it occurs in, 5 ** -length, so a binary clause
counts 5x a ternary one (binary clauses are the ones about to become units). The variable with
the largest s+ * s- (tie-break s+ + s-) is chosen: branching on it shrinks BOTH subproblems,
which is what matters for refuting UNSAT instances. The literal with the larger weight is tried
first, which tends to satisfy more of the constrained clauses on SAT instances.
"""
from collections import defaultdict


def heuristic(clauses, assignment, conflict_count, assignment_history, level):
    score = defaultdict(float)
    for clause in clauses:
        w = 5.0 ** -len(clause)
        for lit in clause:
            score[lit] += w
    var = max(sorted({abs(lit) for lit in score}),
              key=lambda v: 1024 * score[v] * score[-v] + score[v] + score[-v])
    return var, score[var] >= score[-var]
