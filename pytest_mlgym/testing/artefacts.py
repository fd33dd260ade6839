"""Bad artefacts through a task's real trusted evaluator: helpers for task tests and the red team.

    from pytest_mlgym.testing.artefacts import Evil, cheap, score, values

    @cheap(10)
    @given(data=st.binary())
    def test_junk(prepared_task, data):
        task, prepared = prepared_task
        score(task, prepared, lambda path, scratch: path.write_bytes(data))

:func:`score` writes an artefact with ``write(artefact_path, scratch)``, runs the evaluator as the
harness does (:func:`pytest_mlgym.evaluation.run_evaluator`) and checks that the outcome is clean:
a finite score, or ``invalid`` with one printable line. :class:`Evil` is a pickle that proves it ran
(it creates a file); ``values`` / ``json_values`` are hypothesis strategies of awkward plain data.
Imports hypothesis (a dependency of this package) but no pytest plugin machinery.
"""
from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from ..evaluation import Evaluation, run_evaluator


def cheap(n: int, shrink: bool = True):
    """``n`` reproducible examples, no deadline (evaluators start processes), no example database."""
    phases = [Phase.explicit, Phase.reuse, Phase.generate] + ([Phase.shrink] if shrink else [])
    return settings(max_examples=n, deadline=None, derandomize=True, database=None, print_blob=False, phases=phases,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large, HealthCheck.filter_too_much,
                                           HealthCheck.large_base_example])


SPECIAL = [None, True, False, 0, -1, 1, 2**63, -2**63, 10**400, 1e308, -1e308, float("inf"), float("-inf"),
           float("nan"), 5e-324, "", " ", "\t", "\n", "lite", "full", "max", "min", "tiny", "answer.txt",
           "/abs/path", "../escape", "a/../../b", ".", "~", "\x00", "\x1b[31mred", "\u202etxt.exe", "\u2028",
           "\U0001f642", "null", "yes", "0x10", "1e3", "-", "*", "{}", "[]", b"\xff\x00"]
scalars = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
           | st.binary(max_size=8) | st.sampled_from(SPECIAL))
values = st.recursive(scalars, lambda c: st.lists(c, max_size=3)
                      | st.dictionaries(st.text(max_size=6) | st.integers(-3, 3), c, max_size=3), max_leaves=8)
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                           | st.text(max_size=10),
                           lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
                           max_leaves=10)


def score(task, prepared, write, *, handled: bool = True, size: str = "lite") -> Evaluation:
    """Write an artefact with ``write(artefact_path, scratch)``, score it, check the outcome is clean.

    ``handled``: the evaluator must report the artefact itself (exit 0 with a reason), not crash."""
    scratch = Path(tempfile.mkdtemp(prefix=f"mlgym-bad-{task.id}-"))
    try:
        artefact = scratch / (Path(task.spec.artefact).name or "artefact")
        write(artefact, scratch)
        ev = run_evaluator(task, size, artefact, prepared, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    assert isinstance(ev, Evaluation)
    if ev.valid:
        assert isinstance(ev.score, float) and math.isfinite(ev.score), ev
    else:
        reason = ev.reason
        assert isinstance(reason, str) and reason.strip() and len(reason) < 600, ev
        assert len(reason.splitlines()) == 1, repr(reason)
        assert not reason.rstrip().endswith(":"), repr(reason)  # a detail went missing
        if handled:
            assert not reason.startswith(("evaluator failed", "evaluator printed no JSON")), ev
    return ev


class Evil:
    """Unpickling this creates ``path``: proof that a pickle ran code."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")
