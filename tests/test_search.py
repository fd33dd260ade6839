"""The ``search`` agent: a model-free researcher working only through the env's tools."""
from __future__ import annotations

import re
import shutil

import pytest

from pytest_mlgym.agents.search import SearchAgent
from pytest_mlgym.env import MLGymEnv
from pytest_mlgym.episode import Episode
from pytest_mlgym.task import load_task

from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"

TOOLS = ("open ", "edit ", "validate", "submit")


def run(task, tmp_path, agent=None, max_steps=50):
    env = MLGymEnv(task, cache_dir=tmp_path / "cache", max_steps=max_steps)
    ep = Episode.start(env, seed=0)
    try:
        agent = agent or SearchAgent()
        rec = ep.run(agent, name="search")
        return rec, list(env.state.trajectory[1:]), agent
    finally:
        ep.close()


def variant(tmp_path, replace: dict[str, str]):
    """A copy of the knobs task with lines of train.py replaced."""
    dst = tmp_path / "knobs"
    shutil.copytree(DATA / "tasks" / "knobs", dst)
    script = dst / "workspace" / "train.py"
    text = script.read_text()
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    script.write_text(text)
    return load_task(dst)


@pytest.fixture
def knobs():
    return load_task(DATA / "tasks" / "knobs")


def test_search_beats_the_baseline_using_only_the_agent_tools(knobs, tmp_path):
    rec, steps, agent = run(knobs, tmp_path)
    assert rec.passed and rec.status == "submitted", rec.verdict
    assert rec.best_submission < 4.2 and rec.steps <= 50
    for s in steps:  # every file change is an `edit`; shell commands only train, keep and restore
        a = s["action"]
        assert a.startswith(TOOLS) or "python train.py" in a or re.match(r"(mkdir|rm -rf result.json && cp)", a), a
    edits = [s for s in steps if s["action"].startswith("edit ")]
    assert edits and all(s["observation"].startswith("Edited ") for s in edits)
    # the submitted score is the best score of any trial
    assert rec.best_submission == min(t.score for t in agent.trials if t.score is not None)


def test_the_trajectory_reads_as_a_research_log(knobs, tmp_path):
    rec, steps, _ = run(knobs, tmp_path)
    assert all(s.get("thought") for s in steps)
    log = "\n".join(s["thought"] for s in steps)
    assert "Trial 0: the shipped configuration" in log
    assert re.search(r"Plan: successive halving over STEPS: \d+ configurations at STEPS=\d+", log)
    assert re.search(r"Trial \d+ got loss=[\d.]+ in \d+ s", log)
    assert "promoting the best" in log
    table = steps[-1]["thought"]
    assert steps[-1]["action"] == "submit" and "| trial | stage | LR | WIDTH | ACT | NORM | STEPS | loss | s |" in table
    assert re.search(rf"\| \d+ \(submitted\) \|.*\| {rec.best_submission:.6g} \|", table)


def test_successive_halving_trains_fewer_configurations_longer(knobs, tmp_path):
    _, _, agent = run(knobs, tmp_path)
    rungs = {}
    for t in agent.trials[1:]:
        rungs.setdefault(t.rung, []).append(t.config["STEPS"])
    assert list(rungs) == ["rung 1", "rung 2", "top rung"]
    counts = [len(v) for v in rungs.values()]
    fidelities = [v[0] for v in rungs.values()]
    assert len(counts) >= 2 and counts == sorted(counts, reverse=True) and counts[0] > counts[-1]
    assert fidelities == sorted(fidelities) and fidelities[-1] == 20  # extend=2 x the shipped STEPS=10
    assert all(len(set(v)) == 1 for v in rungs.values())
    # promoted configurations are the best of their rung
    first = [t for t in agent.trials if t.rung == "rung 1"]
    promoted = {tuple(sorted((k, v) for k, v in t.config.items() if k != "STEPS"))
                for t in agent.trials if t.rung == "rung 2"}
    best = sorted((t for t in first if t.score is not None), key=lambda t: t.score)[:len(promoted)]
    assert promoted == {tuple(sorted((k, v) for k, v in t.config.items() if k != "STEPS")) for t in best}


def test_the_shipped_configuration_trains_at_the_top_rung_as_a_control(knobs, tmp_path):
    rec, steps, agent = run(knobs, tmp_path, max_steps=80)
    shipped = {k: v for k, v in agent.trials[0].config.items() if k != "STEPS"}
    top = [t for t in agent.trials if t.rung == "top rung"]
    assert len(top) >= 2 and {k: v for k, v in top[-1].config.items() if k != "STEPS"} == shipped
    assert all(shipped != {k: v for k, v in t.config.items() if k != "STEPS"} for t in top[:-1])
    assert top[-1].config["STEPS"] == 20 and top[-1].score == pytest.approx(4.1)  # 4.2 - 2/10 + 2/20
    assert any("and the shipped configuration as a control" in s["thought"] for s in steps)
    assert rec.best_submission == min(t.score for t in top) < top[-1].score  # the control lost


def test_search_is_seeded(knobs, tmp_path):
    actions = [[s["action"] for s in run(knobs, tmp_path / str(i), SearchAgent(seed=seed))[1]]
               for i, seed in enumerate((0, 0, 1))]
    assert actions[0] == actions[1]
    assert actions[0] != actions[2]


def test_a_small_step_budget_still_ends_in_a_submission(knobs, tmp_path):
    rec, steps, agent = run(knobs, tmp_path, max_steps=12)
    assert rec.status == "submitted" and rec.steps <= 12 and rec.best_submission is not None
    assert steps[-1]["action"] == "submit"


def test_the_best_artefact_is_restored_when_a_later_trial_is_worse(knobs, tmp_path):
    # no fidelity knob: plain search; the last trials are rarely the best, so the best is restored
    rec, steps, agent = run(knobs, tmp_path, SearchAgent(extend=1.0, rungs=1))
    restores = [s for s in steps if s["action"].startswith("rm -rf result.json && cp -r .search/best")]
    best = min((t for t in agent.trials if t.score is not None), key=lambda t: t.score)
    if agent.trials[-1] is not best:
        assert restores
    assert rec.best_submission == best.score


def test_a_failing_run_is_recorded_and_not_scored(tmp_path):
    task = variant(tmp_path, {"WIDTH = 10  # units": "WIDTH = 62  # units"})
    rec, steps, agent = run(task, tmp_path)
    base = agent.trials[0]
    assert base.score is None and base.note == "the run failed (exit code 1)"
    run_step = next(i for i, s in enumerate(steps) if "python train.py" in s["action"])
    assert steps[run_step + 1]["action"] != "validate"  # nothing to score: the artefact was removed first
    assert rec.passed, rec.verdict  # the search still finds working configurations


def test_a_run_far_over_its_planned_time_is_stopped(tmp_path):
    task = variant(tmp_path, {"time.sleep(SLEEP * STEPS)": "time.sleep(30 if NORM else 0)"})
    rec, _, agent = run(task, tmp_path, SearchAgent(slack_s=1.0))
    stopped = [t for t in agent.trials if t.note.startswith("stopped early: over its time allowance")]
    assert stopped and all(t.config["NORM"] for t in stopped) and all(t.seconds < 15 for t in stopped)
    assert rec.passed, rec.verdict


def test_a_task_without_knobs_is_scored_as_it_is(tiny, tmp_path):
    rec, steps, _ = run(tiny, tmp_path)
    assert [s["action"] for s in steps] == ["validate", "submit"]
    assert rec.best_submission == 6.0 and not rec.passed


def test_runs_dearer_than_planned_shrink_the_lower_rungs_not_the_top(tmp_path):
    # every run costs a fixed 1 s, so low-fidelity runs cost 3-5x what the plan assumed
    task = variant(tmp_path, {"time.sleep(SLEEP * STEPS)": "time.sleep(1.0)"})
    rec, steps, agent = run(task, tmp_path, SearchAgent(budget=6, min_seconds=0.0))
    stages = [t.rung for t in agent.trials]
    assert stages[-1] == "top rung" and agent.trials[-1].config["STEPS"] == 20
    assert sum(s.startswith("rung") for s in stages) < 9  # fewer than planned at the bottom
    best = min((t for t in agent.trials if t.score is not None), key=lambda t: t.score)
    assert rec.status == "submitted" and rec.best_submission == best.score < 4.2


def test_search_runs_from_the_command_line(bench):
    shutil.copytree(DATA / "tasks" / "knobs", bench.path / "tasks" / "knobs")
    result = bench.runpytest("tasks", "--agent=search", "-k", "knobs", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_knob_values_are_read_and_written_as_python_literals():
    from pytest_mlgym.agents.knobs import literal as _lit, parse_value as _value
    from pytest_mlgym.task import Knob

    assert _value('1_000_000  # steps') == (1000000, "  # steps")
    assert _value('"median"  # a # in the comment') == ("median", "  # a # in the comment")
    assert _value("5e-3") == (0.005, "")
    assert _value("compute()  # not a literal") is None
    f = Knob(name="X", file="a.py", type="float", low=0, high=1)
    assert [_lit(f, 3.0), _lit(f, 1e-5), _lit(f, 0.123456)] == ["3.0", "1e-05", "0.123"]
    assert _lit(Knob(name="C", file="a.py", type="choice", choices=["a"]), "a") == "'a'"
