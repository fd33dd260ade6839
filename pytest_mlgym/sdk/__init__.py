"""What task folders import: the engine's side of a task, with no pytest in it (tasks/CONTRACT.md).

- :mod:`.evaluator`: the evaluator entry point (argv, environment, splits, the one-line result
  protocol), :class:`Invalid` and :class:`EvaluatorError`;
- :mod:`.readers`: strict, bounded readers for artefacts (CSV tables, ``.npz``, JSON via pydantic);
- :mod:`.prepare`: the ``prepare.py`` entry point and :class:`DataMissing`;
- :mod:`.untrusted`: call functions of the agent's code; it runs in a sandbox of its own that the
  harness starts (``pytest_mlgym.sandbox.runner``);
- :mod:`.streams`: randomness the agent plays against, from a secret only the evaluator holds;
- :mod:`.families`: evaluators shared by tasks of one shape (gymnax policy rollouts, CSV labels, iterated games).
"""
from .evaluator import Context, EvaluatorError, Invalid

__all__ = ["Context", "EvaluatorError", "Invalid"]
