"""The benchmark: run each agent on each task; pass when its submission beats the baseline.

For the built-in ``baseline`` agent the check is that it reproduces the recorded baseline
within the task's tolerance, so ``pytest --agent=baseline`` passes on a healthy suite.
"""
import pytest


def test_agent_beats_baseline(task, agent):
    run = task.run(agent)
    if run.published:  # the size's baseline is a published figure, not reproduced here: no verdict
        pytest.skip(run.verdict)
    assert run.passed, run.verdict
