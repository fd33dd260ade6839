"""What task folders import: the engine's side of an evaluator, with no pytest in it.

- :mod:`.untrusted`: call functions of the agent's code from an evaluator; the code runs in a
  sandbox of its own that the harness starts (``pytest_mlgym.sandbox.runner``).
- :mod:`.streams`: randomness the agent plays against, from a secret only the evaluator holds.
"""
