"""Research data: trajectories reference workspace files by hash; `export` writes SFT chat JSONL of
the runs that beat the baseline and Inspect AI eval logs of every run."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

from pytest_mlgym import fingerprint as env_module
from pytest_mlgym import export
from pytest_mlgym.env import MLGymEnv
from pytest_mlgym.fingerprint import WorkspaceFiles, tree_sha256
from pytest_mlgym.episode import Episode


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- hashes in the trajectory ----------------------------------------------------------------------
def test_each_score_records_the_artefact_and_the_files_changed_since_the_last_by_hash(tiny, tmp_path, monkeypatch):
    scans = []
    real_scan = WorkspaceFiles.scan
    monkeypatch.setattr(WorkspaceFiles, "scan", lambda self: scans.append(1) or real_scan(self))
    env = MLGymEnv(tiny, max_steps=7, cache_dir=tmp_path)
    try:
        env.reset(seed=0)
        plant = "echo 8 > answer.txt; mkdir sub; printf hi > sub/notes.md; ln -s /etc/hostname link; mkfifo pipe"
        for action in ("validate", plant, "validate", "rm sub/notes.md", "echo 9 > answer.txt", "cat answer.txt"):
            env.step(action)
        assert len(scans) == 2  # ordinary commands never look at the workspace
        env.step("true")  # the step limit: autosubmission in the same step
        traj = env.state.trajectory
    finally:
        env.close()
    assert len(scans) == 3
    reset = traj[0]
    assert reset["action"] == "(reset)" and reset["task"]["artefact"] == "answer.txt"
    assert reset["task_text"].startswith("# Task: Guess the hidden number") and "COMMANDS" not in reset["task_text"]
    by_step = {e["step"]: e.get("scored") for e in traj}
    assert [s for s in (2, 4, 5, 6) if by_step[s]] == []  # only scoring steps carry hashes
    (first,) = by_step[1]
    assert first["kind"] == "validate" and first["score"] == 6.0
    assert first["artefact"] == {"path": "answer.txt", "sha256": sha(b"3\n"), "size": 2}
    assert first["changed"] == {}  # nothing changed since the episode started
    (second,) = by_step[3]
    assert second["artefact"]["sha256"] == sha(b"8\n") and second["score"] == 9.0
    assert second["changed"] == {"answer.txt": {"sha256": sha(b"8\n"), "size": 2},
                                 "sub/notes.md": {"sha256": sha(b"hi"), "size": 2}}  # no link, no fifo
    (last,) = by_step[7]
    assert last["kind"] == "autosubmit" and last["artefact"]["sha256"] == sha(b"9\n")
    assert last["changed"] == {"answer.txt": {"sha256": sha(b"9\n"), "size": 2}} and last["removed"] == ["sub/notes.md"]


def test_a_missing_artefact_and_an_autosubmission_after_an_agent_crash_are_recorded(tiny, tmp_path):
    class Crashing:
        def reset(self, task):
            self.n = 0

        def act(self, observation):
            self.n += 1
            if self.n == 1:
                return "rm answer.txt"
            if self.n == 2:
                return "validate"
            if self.n == 3:
                return "echo 7 > answer.txt"
            raise RuntimeError("model went away")

    episode = Episode.start(MLGymEnv(tiny, max_steps=10, cache_dir=tmp_path), seed=0)
    try:
        rec = episode.run(Crashing())
        traj = episode.env.state.trajectory
    finally:
        episode.close()
    assert rec.status == "error" and rec.best_submission == 10.0
    assert traj[2]["scored"][0]["artefact"] == {"path": "answer.txt", "sha256": None, "size": None, "missing": True}
    assert traj[2]["scored"][0]["removed"] == ["answer.txt"]
    # the crash ended the episode between steps: the autosubmission goes with the last step taken
    (auto,) = traj[-1]["scored"]
    assert traj[-1]["step"] == 3 and auto["kind"] == "autosubmit" and auto["artefact"]["sha256"] == sha(b"7\n")


def test_folder_artefacts_hash_as_their_sha256sum_listing_and_nothing_unchanged_is_read_twice(tmp_path, monkeypatch):
    ws = tmp_path / "ws"
    (ws / "model" / "sub").mkdir(parents=True)
    (ws / "data").mkdir()
    (ws / "data" / "big.bin").write_bytes(b"x" * 1000)
    (ws / "model" / "w.pt").write_bytes(b"weights")
    (ws / "model" / "sub" / "cfg.json").write_bytes(b"{}")
    (ws / "train.py").write_text("print(1)\n")
    hashed = []
    real = env_module._hash_at
    monkeypatch.setattr(env_module, "_hash_at", lambda fd, name, key: hashed.append(name) or real(fd, name, key))
    files = WorkspaceFiles(ws, skip=("data",), artefact="model/")
    assert hashed == []  # the start of an episode only stats
    out = files.scan()
    listing = f"{sha(b'{}')}  sub/cfg.json\n{sha(b'weights')}  w.pt\n"  # what `sha256sum` prints, sorted by path
    assert out["artefact"]["sha256"] == sha(listing.encode()) == tree_sha256(out["artefact"]["files"])
    assert out["artefact"]["size"] == 9 and out["artefact"]["path"] == "model/"
    assert out["changed"] == {} and sorted(hashed) == ["cfg.json", "w.pt"]
    hashed.clear()
    (ws / "train.py").write_text("print(2)\n")
    (ws / "data" / "big.bin").unlink()  # the read-only data folder is never looked at
    os.symlink("/etc/hostname", ws / "model" / "link")
    out = files.scan()
    assert hashed == ["train.py"]  # the artefact's unchanged files keep their hashes
    assert out["changed"] == {"train.py": {"sha256": sha(b"print(2)\n"), "size": 9}} and "removed" not in out
    assert set(out["artefact"]["files"]) == {"sub/cfg.json", "w.pt"}


# -- export ------------------------------------------------------------------------------------------
AGENTS = """
    class Thinker:
        plan = ["cat answer.txt", "echo 9 > answer.txt", "validate", "submit"]

        def reset(self, task):
            self.todo, self.thought = list(self.plan), ""

        def act(self, observation):
            action = self.todo.pop(0)
            self.thought = f"Plan: {action}" if action != "cat answer.txt" else ""
            return action

    class Loser(Thinker):
        plan = ["echo 1 > answer.txt", "submit"]

    def pytest_mlgym_policies(config):
        return {"thinker": "conftest:Thinker", "loser": "conftest:Loser"}
"""


@pytest.fixture
def recorded(bench, monkeypatch):
    """A real benchmark run: an agent that beats the baseline, one that does not, and the baseline, 2 seeds."""
    from pytest_mlgym import agents

    monkeypatch.setattr(agents, "POLICIES", dict(agents.POLICIES))  # the conftest's policies end with the test
    bench.makeconftest(AGENTS)
    bench.runpytest("--agent=thinker", "--agent=loser", "--agent=baseline", "--seeds=2",
                    "-p", "no:cacheprovider").assert_outcomes(passed=4, failed=2)
    return bench.path / "reports" / "results.jsonl"


@pytest.fixture(scope="module")
def fence():
    """The llm harness's own parser of the text format. Imported here, before any pytester run: a
    first import of litellm inside a pytester test is undone by its module snapshot, which leaves
    importlib.metadata without entry points (later in-process runs lose the mlgym plugin)."""
    from pytest_mlgym.agents.llm import FENCE
    return FENCE


def test_sft_export_holds_the_runs_that_beat_the_baseline_as_llm_harness_chats(fence, recorded, tmp_path):
    out = export.main(recorded, "sft", tmp_path / "sft", sessions=None)
    lines = [json.loads(l) for l in out.read_text().splitlines()]
    assert sorted((l["metadata"]["agent"], l["metadata"]["seed"]) for l in lines) == [("thinker", 0), ("thinker", 1)]
    for line in lines:
        msgs, meta = line["messages"], line["metadata"]
        roles = [m["role"] for m in msgs]
        assert roles == ["system", "user"] + ["assistant", "user"] * 3 + ["assistant"]
        assert "autonomous machine-learning research agent" in msgs[0]["content"]
        assert "DISCUSSION" in msgs[0]["content"] and "COMMANDS (one per step)" in msgs[0]["content"]
        assert msgs[1]["content"].startswith("# Task: Guess the hidden number") and "COMMANDS" not in msgs[1]["content"]
        actions = [fence.findall(m["content"])[-1] for m in msgs if m["role"] == "assistant"]
        assert actions == ["cat answer.txt", "echo 9 > answer.txt", "validate", "submit"]
        assert msgs[2]["content"] == "```\ncat answer.txt\n```"  # no thought: the command alone
        assert msgs[4]["content"] == "DISCUSSION\nPlan: echo 9 > answer.txt\n\n```\necho 9 > answer.txt\n```"
        assert msgs[3]["content"].startswith("3\n") and "(step 2/50;" in msgs[3]["content"]
        assert "Validation: score = 8" in msgs[7]["content"] and "(step 4/50;" in msgs[7]["content"]
        assert (meta["task"], meta["score"], meta["baseline"], meta["passed"]) == ("tiny", 8.0, 6.0, True)
        assert meta["artefact"] == {"path": "answer.txt", "sha256": sha(b"9\n"), "size": 2}


def test_runs_without_a_readable_trajectory_are_skipped_with_a_one_line_warning(recorded, tmp_path, capsys):
    recs = [json.loads(l) for l in recorded.read_text().splitlines()]
    thinker0 = next(r for r in recs if r["agent"] == "thinker" and r["seed"] == 0)
    (recorded.parent / thinker0["trajectory"]).unlink()
    with open(recorded, "a") as f:
        f.write(json.dumps({**thinker0, "seed": 7, "trajectory": None}) + "\n")
    capsys.readouterr()
    out = export.main(recorded, "sft", tmp_path / "sft", sessions=[thinker0["session"]])
    err = capsys.readouterr().err.splitlines()
    warnings = [l for l in err if "warning" in l]
    assert len(warnings) == 2, err
    assert "thinker/seed 0" in warnings[0] and "is missing; skipped" in warnings[0]
    assert "thinker/seed 7" in warnings[1] and "no trajectory was saved" in warnings[1]
    assert [json.loads(l)["metadata"]["seed"] for l in out.read_text().splitlines()] == [1]
    assert export.main(recorded, "sft", tmp_path / "none", sessions=["no-such-session"]).read_text() == ""


def test_a_trajectory_replaced_by_a_later_run_is_not_exported_twice(recorded, bench, tmp_path, capsys):
    bench.runpytest("--agent=thinker", "-p", "no:cacheprovider").assert_outcomes(passed=1)
    capsys.readouterr()
    out = export.main(recorded, "sft", tmp_path / "sft", sessions=None)
    assert "replaced by a later run's" in capsys.readouterr().err
    sessions = {json.loads(l)["metadata"]["session"]: json.loads(l)["metadata"]["seed"] for l in out.read_text().splitlines()}
    assert len(sessions) == 2 and sorted(sessions.values()) == [0, 1]  # seed 0 from the later session only


def test_the_command_line_exports(recorded, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pytest_mlgym", "export", "--format", "sft", str(recorded),
                           "--out", str(tmp_path / "x")], check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(tmp_path / "x" / "sft.jsonl")
    assert len((tmp_path / "x" / "sft.jsonl").read_text().splitlines()) == 2


def test_inspect_export_writes_logs_that_inspect_reads_with_every_run_and_its_scores(recorded, tmp_path):
    pytest.importorskip("inspect_ai", reason="the inspect format needs inspect_ai: pip install 'pytest-mlgym[export]'")
    from inspect_ai.log import list_eval_logs, read_eval_log

    out = export.main(recorded, "inspect", tmp_path / "inspect", sessions=None)
    logs = {}
    for info in list_eval_logs(str(out)):
        log = read_eval_log(info.name)
        logs[log.eval.model] = log
    assert sorted(logs) == ["baseline", "loser", "thinker"]
    for agent, log in logs.items():
        assert log.status == "success" and log.eval.task == "tiny" and len(log.samples) == 2
        assert sorted(s.id for s in log.samples) == [0, 1]
        scores = {s.name: s for s in log.results.scores}
        assert scores["passed"].metrics["accuracy"].value == (0.0 if agent == "loser" else 1.0)
    thinker = logs["thinker"].samples[0]
    assert thinker.scores["passed"].value == "C" and thinker.scores["score"].value["best_submission"] == 8.0
    assert thinker.scores["passed"].answer == sha(b"9\n")  # the submitted artefact, by hash
    assert [m.role for m in thinker.messages] == ["system", "user"] + ["assistant", "user"] * 4
    assert thinker.messages[-1].text.startswith("Submission: score = 8")
    assert thinker.messages[4].text.startswith("DISCUSSION\nPlan: echo 9")
    assert logs["loser"].samples[1].scores["passed"].value == "I"
    assert logs["thinker"].results.scores[1].metrics["best"].value == 8.0
    assert export.main(recorded, "inspect", tmp_path / "inspect", sessions=None) == out  # rewritten, not duplicated
    assert len(list_eval_logs(str(out))) == 3
