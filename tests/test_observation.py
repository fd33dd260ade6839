"""The structured observation: the text an LLM reads, with typed events a program reads instead."""
from __future__ import annotations

import copy
import dataclasses
import importlib
import json
import pickle
import shutil
import string

import pytest

from conftest import DATA
from pytest_mlgym import export
from pytest_mlgym.env import MLGymEnv
from pytest_mlgym.episode import Episode
from pytest_mlgym.observation import (TEMPLATES, CommandResult, EpisodeEnded, Intro, LimitsLeft, Observation,
                                      Scored, ToolResult, events, last)
from pytest_mlgym.task import load_task


def test_an_observation_is_its_text_and_keeps_its_events_through_concatenation():
    a = Observation("first", (CommandResult(0),))
    b = Observation("second", (EpisodeEnded("step_limit", "step limit of 2 reached"),))
    joined = a + "\n" + b
    assert isinstance(joined, str) and joined == "first\nsecond"
    assert [type(e) for e in joined.events] == [CommandResult, EpisodeEnded]
    assert ("x" + a).events == a.events and last(joined, EpisodeEnded).status == "step_limit"
    assert events("plain text") == [] and last("plain text", Scored) is None
    cut = Observation("y" * 10, (CommandResult(0), LimitsLeft(3, 1.0))).retext("yy…")
    assert cut == "yy…" and cut.events == (CommandResult(0, truncated=True), LimitsLeft(3, 1.0))
    for copied in (copy.deepcopy(joined), pickle.loads(pickle.dumps(joined))):
        assert copied == joined and copied.events == joined.events
    assert "window" not in ToolResult("open", True, "/a", 1, 2, 2, ("x", "y")).to_dict()  # the text has it


def test_each_step_says_in_events_what_its_text_says(tiny, tmp_path):
    env = MLGymEnv(tiny, max_steps=6, cache_dir=tmp_path)
    try:
        intro, _ = env.reset(seed=0)
        assert last(intro, Intro).task == env.task_text() and intro.endswith(last(intro, Intro).commands)
        opened = env.step("open answer.txt")[0]
        view = last(opened, ToolResult)
        assert (view.tool, view.ok, view.file, view.first, view.last, view.total, view.window) == \
            ("open", True, f"{env.sandbox.workdir}/answer.txt", 1, 1, 1, ("3",))
        assert last(env.step("goto x")[0], ToolResult) == ToolResult("goto", ok=False)
        failed = env.step("echo hi; exit 3")[0]
        assert last(failed, CommandResult) == CommandResult(3) and failed.endswith("[exit code 3]")
        assert last(failed, LimitsLeft).steps == 3
        scored = env.step("validate")[0]
        assert last(scored, Scored) == Scored("validate", "dev", "score", 6.0, True, "", 6.0, False,
                                              {"score": 6.0})
        env.step("rm answer.txt")
        end = env.step("true")[0]  # the step limit: an autosubmission of nothing
        auto, ended = events(end, Scored)[-1], last(end, EpisodeEnded)
        assert (auto.kind, auto.valid, auto.score, auto.better) == ("autosubmit", False, None, None)
        assert auto.reason and auto.reason in end
        assert (ended.status, ended.reason) == ("step_limit", "step limit of 6 reached")
        assert last(end, LimitsLeft).steps == 0
    finally:
        env.close()


class Prober:
    """Validates guesses whose dev and test scores differ, reading every event it is given."""

    plan = ["echo 9 > answer.txt", "validate", "echo 3 > answer.txt", "validate", "find_file answer.txt",
            "cat nothing", "echo 6 > answer.txt", "submit"]

    def reset(self, task):
        self.todo, self.seen = list(self.plan), []

    def act(self, observation):
        self.seen.append(observation)
        return self.todo.pop(0)


def numbers(value):
    """Every number anywhere inside ``value`` (events as all their fields, the window included)."""
    if dataclasses.is_dataclass(value):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value) if f.name != "baseline"}
    if isinstance(value, dict):
        return [n for v in value.values() for n in numbers(v)]
    if isinstance(value, (list, tuple)):
        return [n for v in value for n in numbers(v)]
    if isinstance(value, str):
        return [float(w) for w in value.split() if w.replace(".", "", 1).isdigit()]
    return [float(value)] if isinstance(value, (int, float)) and not isinstance(value, bool) else []


@pytest.mark.parametrize("protocol", ["sealed", "mlgym"])
def test_the_events_of_a_sealed_episode_carry_no_test_score(tmp_path, protocol):
    # the split task: guessing 9 scores dev 10 / test 3, 3 scores dev 4 / test 9, 6 scores dev 7 / test 6
    agent = Prober()
    ep = Episode.start(MLGymEnv(load_task(DATA / "tasks" / "split"), cache_dir=tmp_path, protocol=protocol), seed=0)
    try:
        rec = ep.run(agent, name="prober")
        seen = agent.seen + [ep.observation]
    finally:
        ep.close()
    got = [e for obs in seen for e in events(obs)]
    scored = [e for e in got if isinstance(e, Scored)]
    assert [s.kind for s in scored] == ["validate", "validate", "submit"]
    if protocol == "mlgym":  # nothing is sealed: the events show the test split, as the text does
        assert [(s.split, s.score) for s in scored] == [("test", 3.0), ("test", 9.0), ("test", 6.0)]
        return
    assert [(s.split, s.score, s.metrics) for s in scored] == \
        [("dev", r.dev_score, r.dev_metrics) for r in rec.scores] == [("dev", 10.0, {"score": 10.0}),
                                                                       ("dev", 4.0, {"score": 4.0}),
                                                                       ("dev", 7.0, {"score": 7.0})]
    test_only = {r.score for r in rec.scores} - {r.dev_score for r in rec.scores}
    assert test_only == {3.0, 9.0, 6.0}
    assert {type(e) for e in got} == {Intro, LimitsLeft, CommandResult, ToolResult, Scored}
    found = [n for e in got if not isinstance(e, Intro) for n in numbers(e)]  # the intro is the task's text
    assert not test_only & set(found), [e for e in got if test_only & set(numbers(e))]
    for obs in seen:  # nothing else rides along on the observation object
        assert set(vars(obs)) == {"events"}


# -- done when: rewording every observation template leaves search and export working ---------------
def reworded(name: str, template: str) -> str:
    """``template`` with every word of it replaced: only its fields (and their formats) are kept."""
    fields = [(f, spec) for _, f, spec, _ in string.Formatter().parse(template) if f is not None]
    return f"<{name}> " + " ~ ".join("{" + f + (":" + spec if spec else "") + "}" for f, spec in fields) + " </>"


@pytest.fixture(scope="module")
def inspect_log():
    """inspect_ai's log reader, or None without it. Imported (with what export uses) before any pytester
    run: a first import inside one is undone by its module snapshot, which breaks pydantic for later tests."""
    try:
        for module in ("inspect_ai.model", "inspect_ai.scorer"):  # what export.write_inspect imports
            importlib.import_module(module)
        from inspect_ai.log import list_eval_logs, read_eval_log
    except ImportError:  # the inspect format is optional (pytest-mlgym[export])
        return None
    return list_eval_logs, read_eval_log


def test_search_and_export_work_whatever_the_wording_of_the_observations(inspect_log, bench, monkeypatch, tmp_path):
    for name, template in list(TEMPLATES.items()):
        monkeypatch.setitem(TEMPLATES, name, reworded(name, template))
    # the task text is built by the env itself (not a template): reworded too
    monkeypatch.setattr(MLGymEnv, "task_text", lambda self: f"<task> {self.task.spec.name} </>")
    shutil.copytree(DATA / "tasks" / "knobs", bench.path / "tasks" / "knobs")
    bench.runpytest("tasks", "--agent=search", "-k", "knobs", "-p", "no:cacheprovider").assert_outcomes(passed=1)
    results = bench.path / "reports" / "results.jsonl"
    (rec,) = [json.loads(line) for line in results.read_text().splitlines()]
    assert rec["agent"] == "search" and rec["passed"] and rec["best_submission"] < rec["baseline"] == 4.2
    steps = [json.loads(line) for line in (results.parent / rec["trajectory"]).read_text().splitlines()]
    text = "\n".join(s["observation"] for s in steps)
    assert "<view_line>" in text and "<validation>" in text and "<edited>" in text  # the new wording was used
    assert "Validation:" not in text and "lines total" not in text and "Edited " not in text
    assert any(s["action"].startswith("edit ") for s in steps) and steps[-1]["action"] == "submit"

    (line,) = export.main(results, "sft", tmp_path / "sft").read_text().splitlines()
    chat = json.loads(line)
    roles = [m["role"] for m in chat["messages"]]
    assert roles == ["system", "user"] + ["assistant", "user"] * (len(steps) - 2) + ["assistant"]
    system, task = chat["messages"][0]["content"], chat["messages"][1]["content"]
    assert "<docs_header>" in system and task == "<task> Tune a toy trainer </>"
    assert chat["messages"][3]["content"].startswith(steps[1]["observation"].strip())
    assert chat["metadata"]["score"] == rec["best_submission"] and chat["metadata"]["passed"]
    assert chat["metadata"]["artefact"]["path"] == "result.json" and chat["metadata"]["artefact"]["sha256"]
    if inspect_log is None:
        return
    list_eval_logs, read_eval_log = inspect_log
    (log,) = [read_eval_log(i.name) for i in list_eval_logs(str(export.main(results, "inspect", tmp_path / "inspect")))]
    (sample,) = log.samples
    assert [m.role for m in sample.messages] == ["system", "user"] + ["assistant", "user"] * (len(steps) - 1)
    assert sample.scores["passed"].value == "C" and sample.scores["score"].value["best_submission"] == rec["best_submission"]
