"""The benchmark: run each agent on each task; pass when its submission beats the baseline.

For the built-in ``baseline`` agent the check is that it reproduces the recorded baseline
within the task's tolerance, so ``pytest --agent=baseline`` passes on a healthy suite.
"""


def test_agent_beats_baseline(task, agent):
    run = task.run(agent)
    assert run.passed, run.verdict
