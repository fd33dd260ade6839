"""The checks every task folder must pass, for any task folder, in this repository or not.

    python -m pytest_mlgym check-task DIR [--quick]      # one line per check, exit 1 on a failure

or, in a test module, for a set of task folders (tests/test_shipped_tasks.py does this)::

    from pytest_mlgym.testing.task_checks import TaskChecks

    class TestMyTasks(TaskChecks):
        task_dirs = [Path("tasks/my_task")]
        baseline = "slow"            # "run" (default), "slow" (marked slow past 10 s) or "skip"

Each check runs once per task folder: its task.yaml loads and records a dev baseline per measured
size; prepare.py makes the same bytes twice; the sample artefact is valid and scored on a dev and a
test split; no test score reaches the agent before the episode ends; the reference solution beats
the baseline on the test split; malformed, missing and linked artefacts are invalid with a
one-line reason; the baseline reproduces its recorded scores within the tolerance. They drive real
episodes through the engine (what the benchmark uses).
"""
from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest

from ..task import DataMissing, Task, TaskError, load_task

__all__ = ["TaskChecks"]
SLOW_SECONDS = 10  # as the plugin: a baseline over ~10 s (or never timed) is marked slow
JUNK = [b"", b"\x00\xff\xfe garbage \x00" * 100, b"x = (\n", "id,label\n1,nan\n".encode()]
_SAMPLE: dict[tuple[Path, str], object] = {}  # (task folder, size) -> the sample artefact's Evaluation


class TaskChecks:
    task_dirs: list[Path] = []  # the task folders to check
    size: str = "lite"
    baseline: str = "run"  # "run", "slow" (marked slow when it takes over 10 s) or "skip" (--quick)
    prepare_twice: bool = True  # run prepare.py twice and compare (False: --quick)
    require_reference: bool = True  # a task without reference/ fails that check (False: it is skipped)

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "checked_dir" not in metafunc.fixturenames:
            return
        params = []
        for folder in self.task_dirs:
            marks = []
            if metafunc.function.__name__ == "test_baseline_reproduces" and self.baseline == "slow":
                marks = [pytest.mark.slow] if _slow(Path(folder), self.size) else []
            params.append(pytest.param(Path(folder), id=Path(folder).name, marks=marks))
        metafunc.parametrize("checked_dir", params)

    @pytest.fixture
    def checked_task(self, checked_dir: Path) -> Task:
        try:
            task = load_task(checked_dir)
        except TaskError as e:
            pytest.fail(str(e), pytrace=False)
        if self.size not in task.spec.sizes:
            pytest.skip(f"{task.id} has no '{self.size}' size")
        return task

    @pytest.fixture
    def checked_episode(self, checked_task: Task):
        from ..env import MLGymEnv
        from ..episode import Episode

        try:
            ep = Episode.start(MLGymEnv(checked_task, size=self.size), seed=0)
        except DataMissing as e:
            pytest.skip(str(e))
        yield ep
        ep.close()

    # -- the checks ----------------------------------------------------------------------------
    def test_schema(self, checked_dir: Path) -> None:
        """task.yaml loads (fields, files, knobs); every measured size records its dev baseline; the
        secret, if any, is usable; the task's test modules have names no other task's can clash with."""
        from ..sdk import streams

        try:
            task = load_task(checked_dir)
        except TaskError as e:
            pytest.fail(str(e), pytrace=False)
        assert load_task(task.path).spec.knobs == task.spec.knobs  # load_task checked each knob
        for name, size in task.spec.sizes.items():
            assert size.published or size.dev_baseline is not None, (
                f"sizes.{name}: no dev_baseline (measure it: python -m pytest_mlgym measure {task.path} --size {name})")
        if (task.private_dir / "secret").exists():
            try:
                streams.secret(task.private_dir)
            except streams.SecretMissing as e:
                pytest.fail(str(e), pytrace=False)
        tests = task.path / "tests"
        if tests.is_dir():
            assert not (tests / "__init__.py").exists(), f"{tests}/__init__.py: task tests are not a package"
            for module in tests.rglob("*.py"):
                if module.name.startswith("test_") or module.name.endswith("_test.py"):
                    assert re.fullmatch(rf"test_{task.id}(_\w+)?\.py", module.name), (
                        f"{module}: name task test modules test_{task.id}.py or test_{task.id}_*.py "
                        "(pytest imports them by file name; another task's test module could clash)")

    def test_prepare_is_deterministic(self, checked_task: Task, tmp_path: Path) -> None:
        """Two fresh runs of prepare.py (and the size's public files) give the same bytes."""
        if not self.prepare_twice:
            pytest.skip("--quick: prepare.py is not run twice")
        if not checked_task.spec.prepare and not checked_task.size(self.size).public:
            pytest.skip("no prepare.py and no public files")
        try:
            runs = [checked_task.prepare(self.size, tmp_path / name) for name in ("a", "b")]
        except DataMissing as e:
            pytest.skip(str(e))
        for part in ("public", "private"):
            first, second = (getattr(r, part) for r in runs)
            assert (first is None) == (second is None), f"{part}/ made by one run only"
            if first is not None:
                diff = _first_difference(first, second)
                assert diff is None, f"prepare.py is not deterministic: {part}/{diff} differs between two runs"

    def test_sample_artefact_is_valid(self, checked_episode) -> None:
        ev = _sample_evaluation(checked_episode, self.size)
        assert ev.score is not None, ev.reason

    def test_evaluator_scores_dev_and_test_splits(self, checked_episode) -> None:
        """One evaluator run returns both splits, each with the task's metric."""
        ev = _sample_evaluation(checked_episode, self.size)
        assert ev.score is not None, ev.reason
        metric = checked_episode.task.spec.metric.name
        assert ev.dev_score is not None and metric in ev.dev_metrics, (
            f"the evaluator returned no dev split: score() must return {{'dev': {{'{metric}': ...}}, "
            f"'test': {{'{metric}': ...}}}} (got {sorted(ev.dev_metrics) or 'test metrics only'})")

    def test_test_scores_stay_sealed(self, checked_task: Task) -> None:
        """No test-split number reaches the agent (observations, info, trajectory) before the episode
        ends, and the submission's test score is recorded (:mod:`pytest_mlgym.testing.sealed`)."""
        from . import sealed

        try:
            problems = sealed.check(checked_task, self.size)
        except DataMissing as e:
            pytest.skip(str(e))
        assert not problems, "; ".join(problems)

    def test_reference_solution_beats_the_baseline(self, checked_episode) -> None:
        task = checked_episode.task
        if not (task.path / "reference").is_dir():
            if self.require_reference:
                pytest.fail(f"{task.id} ships no reference solution", pytrace=False)
            pytest.skip("no reference/ solution")
        checked_episode.sandbox.copy_in(task.path / "reference", ".")
        if task.spec.reference_command:
            checked_episode.step(task.spec.reference_command)
        obs, *_, info = checked_episode.step("submit")
        assert info["status"] == "submitted", obs
        base = checked_episode.env.size_spec.baseline
        assert task.spec.metric.better(info["best_submission"], base), f"reference {info['best_submission']} vs {base}"

    @pytest.mark.parametrize("content", JUNK, ids=["empty", "binary", "python-syntax", "csv-nan"])
    def test_malformed_artefacts_are_invalid_with_a_reason(self, checked_episode, content: bytes) -> None:
        path = _artefact(checked_episode)
        if checked_episode.task.spec.artefact.endswith("/"):  # a folder artefact: one junk file as its content
            checked_episode.step(f"rm -rf {shlex.quote(path)} && mkdir {shlex.quote(path)}")
            path += "/junk.bin"
        checked_episode.sandbox.write_file(path, content)
        obs, *_ = checked_episode.step("validate")
        event = checked_episode.env.results()["scores"][-1]  # the harness's view: the agent's info has no test score
        assert event.score is None and event.reason and "\n" not in event.reason, obs
        assert obs.startswith("Validation: the artefact is invalid")

    def test_missing_artefact_is_invalid(self, checked_episode) -> None:
        checked_episode.step(f"rm -rf {shlex.quote(_artefact(checked_episode))}")
        obs, *_, info = checked_episode.step("submit")
        assert info["status"] == "invalid" and info["best_submission"] is None
        assert "no valid artefact" in info["reason"]

    def test_artefact_symlink_to_hidden_files_is_refused(self, checked_episode) -> None:
        target = next(p for p in checked_episode.task.private_dir.rglob("*") if p.is_file())
        where = shlex.quote(_artefact(checked_episode))
        checked_episode.step(f"rm -rf {where}; ln -s {target} {where}")
        checked_episode.step("validate")
        event = checked_episode.env.results()["scores"][-1]
        assert event.score is None and "no valid artefact" in event.reason

    def test_baseline_reproduces(self, checked_task: Task) -> None:
        """The baseline, run as the baseline agent runs it, scores its recorded test and dev
        baselines within the tolerance."""
        from ..authoring.measure import run_baseline

        size = checked_task.size(self.size)
        if self.baseline == "skip":
            pytest.skip("--quick: the baseline is not run")
        if size.published:
            pytest.skip(f"sizes.{self.size} is a published figure (published: true): not reproduced here")
        try:
            r = run_baseline(checked_task, self.size)
        except DataMissing as e:
            pytest.skip(str(e))
        assert r.test is not None, f"the baseline's artefact is invalid: {r.reason}"
        m = checked_task.spec.metric.name
        assert abs(r.test - size.baseline) <= size.tolerance, (
            f"test {m} = {r.test!r}, recorded {size.baseline!r} ± {size.tolerance:g}")
        if size.dev_baseline is not None:
            assert r.dev is not None and abs(r.dev - size.dev_baseline) <= size.tolerance, (
                f"dev {m} = {r.dev!r}, recorded dev_baseline {size.dev_baseline!r} ± {size.tolerance:g}")


def _slow(folder: Path, size: str) -> bool:
    try:
        task = load_task(folder)
    except TaskError:
        return False
    spec = task.size(size) if size in task.spec.sizes else None
    return spec is None or spec.seconds is None or spec.seconds > SLOW_SECONDS


def _artefact(episode) -> str:
    return episode.task.spec.artefact.rstrip("/")


def _sample_evaluation(episode, size: str):
    """The evaluation of the sample artefact (or, with none, the workspace's own artefact), once per
    task and size for all checks that read it."""
    from ..evaluation import EvaluatorFailed, evaluate

    task = episode.task
    key = (task.path, size)
    if key not in _SAMPLE:
        spec = task.spec
        if spec.sample_artefact:
            episode.step(f"rm -rf {shlex.quote(_artefact(episode))} && cp -r {shlex.quote(spec.sample_artefact)} "
                         f"{shlex.quote(_artefact(episode))}")
        elif spec.baseline_command:
            pytest.fail(f"{spec.id}: the workspace holds no artefact until the baseline runs: declare sample_artefact",
                        pytrace=False)
        env = episode.env
        try:
            _SAMPLE[key] = evaluate(task, size, env.sandbox, env.prepared, hidden=env.hidden,
                                    code_hidden=task.masked_paths())
        except EvaluatorFailed as e:
            pytest.fail(f"harness error, not the artefact's: {e}", pytrace=False)
    return _SAMPLE[key]


def _first_difference(a: Path, b: Path) -> str | None:
    """The first relative path whose presence or bytes differ between two trees, or None."""
    files = sorted({str(p.relative_to(root)) for root in (a, b) for p in root.rglob("*") if p.is_file()})
    for rel in files:
        pa, pb = a / rel, b / rel
        if not (pa.is_file() and pb.is_file()) or pa.read_bytes() != pb.read_bytes():
            return rel
    return None


def _from_environment() -> list[Path]:
    return [Path(p) for p in os.environ.get("MLGYM_CHECK_TASK_DIRS", "").split(os.pathsep) if p]


class TestTaskFolder(TaskChecks):
    """What ``python -m pytest_mlgym check-task`` runs (its folders and settings come from the environment)."""

    task_dirs = _from_environment()
    size = os.environ.get("MLGYM_CHECK_SIZE") or "lite"
    baseline = "skip" if os.environ.get("MLGYM_CHECK_QUICK") else "run"
    prepare_twice = not os.environ.get("MLGYM_CHECK_QUICK")
    require_reference = bool(os.environ.get("MLGYM_CHECK_REQUIRE_REFERENCE"))

