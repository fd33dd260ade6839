"""Branching heuristic for the DPLL solver in solver.py (this file is what gets scored).

Baseline: DLIS (dynamic largest individual sum): count how often each literal occurs in the
open clauses, branch on the most frequent literal and make it true. The knobs below generalise
it: clause-length weighting (Jeroslow-Wang style), how the two literal scores of a variable are
combined, and the polarity rule. With the defaults it is plain DLIS.
"""
from collections import defaultdict

LENGTH_WEIGHT = 1.0   # a clause of length k adds LENGTH_WEIGHT ** -k to each of its literals (1.0: plain counts)
MAX_WEIGHT = 1.0      # variable score = MAX_WEIGHT * max(s+, s-)
SUM_WEIGHT = 0.0      #               + SUM_WEIGHT * (s+ + s-)
PRODUCT_WEIGHT = 0.0  #               + PRODUCT_WEIGHT * s+ * s-   (s+/s-: scores of v / -v)
POLARITY = "larger"   # value to try first: "larger" (satisfy the literal with the larger score),
                      # "smaller", "true" or "false"


def heuristic(clauses, assignment, conflict_count, assignment_history, level):
    """Pick the next decision: returns (variable, value).

    clauses: the open clauses (not yet satisfied), each a list of its unassigned literals
    (DIMACS ints: v / -v); assignment[v]: True, False or None (unassigned), index 0 unused;
    conflict_count: conflicts so far on this instance; assignment_history: assigned literals
    in order; level: number of decisions on the current branch (0 = first call on an instance).
    """
    score = defaultdict(float)
    for clause in clauses:
        w = LENGTH_WEIGHT ** -len(clause)
        for lit in clause:
            score[lit] += w
    best_var, best = None, None
    for var in sorted({abs(lit) for lit in score}):  # ascending: ties go to the lowest variable
        pos, neg = score[var], score[-var]
        s = MAX_WEIGHT * max(pos, neg) + SUM_WEIGHT * (pos + neg) + PRODUCT_WEIGHT * pos * neg
        if best is None or s > best:
            best_var, best = var, s
    pos, neg = score[best_var], score[-best_var]
    if POLARITY == "larger":
        value = pos >= neg
    elif POLARITY == "smaller":
        value = pos < neg
    else:
        value = POLARITY == "true"
    return best_var, value
