"""The run's options, resolved once: a frozen, validated :class:`Options` (DESIGN.md ``config.py``).

Every option has one flag and one ini name (:data:`OPTIONS`, read by ``plugin.pytest_addoption``);
:meth:`Options.resolve` reads them (command line, else ini file, else default) in
``pytest_configure``, on the controller and on every xdist worker alike, and turns every bad value
into a one-line ``pytest.UsageError`` before any task runs. Nothing here starts or changes anything:
the live state of a run is ``session.MLGymSession``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pytest

from . import agents, sandbox
from .agents import AgentError, AgentSpec
from .results import PROTOCOLS
from .task import SIZES, default_cache_dir


class Option(NamedTuple):
    flag: str  # on the command line
    ini: str  # in the ini file
    default: str
    help: str


OPTIONS: dict[str, Option] = {
    "agent": Option("--agent", "mlgym_agents", "baseline",
              "agent to run (repeatable): agents/NAME.yaml, a built-in policy, or replay:PATH"),
    "seeds": Option("--seeds", "mlgym_seeds", "1", "independent runs per task and agent"),
    "max_steps": Option("--max-steps", "mlgym_max_steps", "50", "agent steps per episode"),
    "sandbox": Option("--sandbox", "mlgym_sandbox", "local", "where agent commands run: local or docker"),
    "task_size": Option("--task-size", "mlgym_task_size", "lite",
                        "task size: lite (a CPU in minutes) or full (published scale)"),
    "report_dir": Option("--mlgym-report-dir", "mlgym_report_dir", "reports",
                         "where results.jsonl and summary.json are written"),
    "tasks_dir": Option("--mlgym-tasks-dir", "mlgym_tasks_dirs", "",
                  "a folder of task folders to add (repeatable) to the default <rootdir>/tasks, which the ini's "
                  "mlgym_tasks_dirs replaces"),
    "agents_dir": Option("--mlgym-agents-dir", "mlgym_agents_dirs", "",
                         "folders of agent yaml files (default: <rootdir>/agents)"),
    "gpus": Option("--gpus", "mlgym_gpus", "", "GPU ids the sandboxes may use, e.g. 0,1,2,3; split across xdist "
                   "workers so that no two running episodes share one"),
    "gpus_per_run": Option("--gpus-per-run", "mlgym_gpus_per_run", "", "GPUs each episode gets (default: its worker's "
                     "whole share); with no --gpus, from every GPU nvidia-smi lists"),
    "docker_image": Option("--docker-image", "mlgym_docker_image", "", "a self-contained image for --sandbox docker "
                     "(docker/Dockerfile); default: one built offline that mounts this host's Python read-only"),
    "docker_host": Option("--docker-host", "mlgym_docker_hosts", "",
                    "Docker Engine URL for --sandbox docker (repeatable: each episode goes to the least busy; "
                    "default: DOCKER_HOST)"),
    "fail_under_aup": Option("--mlgym-fail-under-aup", "mlgym_fail_under_aup", "",
                       "exit non-zero when an agent's AUP (best submission) is below X; every agent under test "
                       "is gated, the recorded baseline is not"),
    "compare": Option("--mlgym-compare", "mlgym_compare", "",
                "a stored run to compare with (a results.jsonl or its report folder; its last session): "
                "per-task diff and AUP change per agent at the end"),
    "max_regression": Option("--mlgym-max-regression", "mlgym_max_regression", "",
                       "with --mlgym-compare: exit non-zero when an agent's AUP (best submission) drops by more "
                       "than D"),
    "confidence": Option("--mlgym-confidence", "mlgym_confidence", "",
                   "noise-aware gates: --mlgym-max-regression and --mlgym-fail-under-aup fail only when the "
                   "bound at confidence C (0.5 < C < 1, e.g. 0.95; a bootstrap over seeds) is past the threshold"),
    "protocol": Option("--mlgym-protocol", "mlgym_protocol", "sealed",
                 "sealed (default): validate shows a dev split, the hidden test split is scored for the record "
                 "only; mlgym: MLGym's protocol (validate shows the test score), to compare with published numbers"),
    "min_isolation": Option("--mlgym-min-isolation", "mlgym_min_isolation", "",
                      "stop at start when the sandbox's isolation is below LEVEL: none < unshare < bwrap "
                      "(--sandbox docker counts as bwrap)"),
}
REPEATABLE = {"agent", "tasks_dir", "agents_dir", "docker_host"}
LIVE = ("on", "off", "auto")  # --mlgym-live / --mlgym-no-live, ini mlgym_live; auto: on with -v


def _setting(config: pytest.Config, name: str) -> list[str]:
    """The option from the command line, else from the ini file, else its default (as a list)."""
    opt = OPTIONS[name]
    value = config.getoption(f"mlgym_{name}")
    if value in (None, []):
        value = config.getini(opt.ini) or opt.default
    values = value if isinstance(value, list) else str(value).split()
    return [str(v) for v in values if str(v)]


def _int(config: pytest.Config, name: str, minimum: int) -> int:
    raw = _setting(config, name)[-1]
    try:
        n = int(raw)
    except ValueError:
        n = minimum - 1
    if n < minimum:
        raise pytest.UsageError(f"--{name.replace('_', '-')}: expected a whole number >= {minimum}, got '{raw}'")
    return n


def _number(config: pytest.Config, name: str) -> float | None:
    """A number >= 0 from the command line or the ini file, or None when not given."""
    values = _setting(config, name)
    if not values:
        return None
    raw = values[-1]
    try:
        x = float(raw)
    except ValueError:
        x = math.nan
    if not math.isfinite(x) or x < 0:
        raise pytest.UsageError(f"{OPTIONS[name].flag}: expected a number >= 0, got '{raw}'")
    return x


def _confidence(config: pytest.Config) -> float | None:
    """``--mlgym-confidence`` (or ini ``mlgym_confidence``): a number strictly between 0.5 and 1, or None.
    At or below 0.5 the "confident" bound would lie on the wrong side of the estimate."""
    values = _setting(config, "confidence")
    if not values:
        return None
    try:
        c = float(values[-1])
    except ValueError:
        c = math.nan
    if not 0.5 < c < 1:
        raise pytest.UsageError(f"{OPTIONS['confidence'].flag}: expected a confidence between 0.5 and 1 "
                                f"(exclusive), e.g. 0.95, got '{values[-1]}'")
    return c


def _level(config: pytest.Config) -> str | None:
    """``--mlgym-min-isolation`` (or ini ``mlgym_min_isolation``): a level of ``trust.LEVELS``, or None."""
    from .report.trust import LEVELS

    values = _setting(config, "min_isolation")
    if not values:
        return None
    if (level := values[-1].lower()) not in LEVELS:
        raise pytest.UsageError(f"{OPTIONS['min_isolation'].flag}: unknown level '{values[-1]}'; choose from "
                                f"{', '.join(LEVELS)} (weakest first)")
    return level


def _live(config: pytest.Config) -> bool:
    """Live progress lines: ``--mlgym-live``/``--mlgym-no-live``, else ini ``mlgym_live`` (on, off, auto),
    else auto: on with ``-v``."""
    value = config.getoption("mlgym_live") or (config.getini("mlgym_live") or "auto").strip().lower()
    value = {"true": "on", "1": "on", "yes": "on", "false": "off", "0": "off", "no": "off"}.get(value, value)
    if value not in LIVE:
        raise pytest.UsageError(f"mlgym_live: expected one of {', '.join(LIVE)}, got '{value}'")
    return value == "on" or (value == "auto" and config.get_verbosity() >= 1)


def _paths(config: pytest.Config, name: str, default: Path, hook) -> list[Path]:
    given = [Path(p) for p in _setting(config, name)]
    base = config.invocation_params.dir
    roots = [p if p.is_absolute() else base / p for p in given] or ([default] if default.is_dir() else [])
    for extra in hook(config=config):
        roots += [Path(p) for p in extra]
    return [p.resolve() for p in roots]


def _task_roots(config: pytest.Config) -> list[Path]:
    """The folders of task folders: the ini's ``mlgym_tasks_dirs`` (relative to the ini file), which
    REPLACES the default ``<rootdir>/tasks``, then every ``--mlgym-tasks-dir`` (relative to the
    invocation folder), which ADDS to it, then the ``pytest_mlgym_task_dirs`` hook's folders."""
    ini = [Path(p) for p in config.getini(OPTIONS["tasks_dir"].ini) or []]
    ini_base = config.inipath.parent if config.inipath else config.rootpath
    default = config.rootpath / "tasks"
    roots = [p if p.is_absolute() else ini_base / p for p in ini] or ([default] if default.is_dir() else [])
    base = config.invocation_params.dir
    roots += [p if p.is_absolute() else base / p for p in map(Path, config.getoption("mlgym_tasks_dir") or [])]
    for extra in config.pluginmanager.hook.pytest_mlgym_task_dirs(config=config):
        roots += [Path(p) for p in extra]
    return list(dict.fromkeys(p.resolve() for p in roots))

@dataclass(frozen=True)
class Options:
    """Everything the user chose for this run, checked. ``agents`` are resolved specs (their
    ``params`` get a local model server's URL once it runs: the one thing set later)."""
    agents: tuple[AgentSpec, ...]
    explicit_agents: bool  # named by --agent or the ini file, not the default
    seeds: int
    max_steps: int
    backend: str  # a key of sandbox.BACKENDS (the plugins' included)
    size: str
    protocol: str  # sealed or mlgym (results.PROTOCOLS)
    report_dir: Path
    task_roots: tuple[Path, ...]
    gpus: tuple[str, ...]  # the GPUs each episode of this process gets (its share of --gpus)
    docker_hosts: tuple[str, ...]
    docker_image: str | None
    fail_under_aup: float | None  # gate: every agent's AUP (best submission) >= this
    compare: Path | None  # the stored run to compare with (results.jsonl)
    max_regression: float | None  # gate: no agent's AUP drops by more than this against `compare`
    confidence: float | None  # the gates decide on one-sided bounds at this confidence (report/noise.py)
    min_isolation: str | None  # none, unshare or bwrap
    live: bool  # one line per episode step in the terminal
    resume: bool
    cache_dir: Path

    @classmethod
    def resolve(cls, config: pytest.Config) -> "Options":
        """The options of this run; the sandboxes and policies of plugins must be registered first."""
        hook = config.pluginmanager.hook
        size = _setting(config, "task_size")[-1]
        if size not in SIZES:
            raise pytest.UsageError(f"--task-size: unknown size '{size}'; valid sizes: {', '.join(SIZES)}")
        backend = _setting(config, "sandbox")[-1]
        if backend not in sandbox.BACKENDS:
            raise pytest.UsageError(f"--sandbox: unknown sandbox '{backend}'; valid: {', '.join(sandbox.BACKENDS)}")
        agent_dirs = _paths(config, "agents_dir", config.rootpath / "agents", hook.pytest_mlgym_agent_dirs)
        names = list(dict.fromkeys(_setting(config, "agent")))  # repeated names run once
        try:
            specs = tuple(agents.resolve(n, agent_dirs) for n in names)
        except AgentError as e:
            raise pytest.UsageError(f"--agent: {e}") from None
        report_dir = Path(_setting(config, "report_dir")[-1])
        report_dir = report_dir if report_dir.is_absolute() else config.invocation_params.dir / report_dir
        compare_given = _setting(config, "compare")
        compare = Path(compare_given[-1]) if compare_given else None
        if compare is not None and not compare.is_absolute():
            compare = config.invocation_params.dir / compare
        if compare is not None and compare.is_dir():
            compare = compare / "results.jsonl"
        protocol = _setting(config, "protocol")[-1]
        if protocol not in PROTOCOLS:
            raise pytest.UsageError(f"--mlgym-protocol: unknown protocol '{protocol}'; choose sealed or mlgym")
        max_regression = _number(config, "max_regression")
        if max_regression is not None and compare is None:
            raise pytest.UsageError("--mlgym-max-regression: needs --mlgym-compare OLD.jsonl, the stored run to "
                                    "compare with")
        image = config.getoption("mlgym_docker_image") or config.getini("mlgym_docker_image") or None
        return cls(agents=specs, explicit_agents=bool(config.getoption("mlgym_agent") or config.getini("mlgym_agents")),
                   seeds=_int(config, "seeds", 1), max_steps=_int(config, "max_steps", 1), backend=backend, size=size,
                   protocol=protocol, report_dir=report_dir, task_roots=tuple(_task_roots(config)),
                   gpus=gpu_share(config, getattr(config, "workerinput", None)),
                   docker_hosts=tuple(_setting(config, "docker_host")), docker_image=image,
                   fail_under_aup=_number(config, "fail_under_aup"), compare=compare, max_regression=max_regression,
                   confidence=_confidence(config),
                   min_isolation=_level(config), live=_live(config), resume=bool(config.getoption("mlgym_resume")),
                   cache_dir=default_cache_dir())


def gpu_share(config: pytest.Config, workerinput: dict | None) -> tuple[str, ...]:
    """The GPUs each episode of this process gets: worker k of n takes ids k, k+n, ... of the pool
    (so running episodes never share a GPU), and each episode gets ``--gpus-per-run`` of those."""
    raw = (_setting(config, "gpus") or [""])[-1]
    per_run_raw = (_setting(config, "gpus_per_run") or [""])[-1]
    if not raw and not per_run_raw:
        return ()
    pool = [g.strip() for g in raw.split(",") if g.strip()] if raw else _visible_gpus()
    if not pool:
        raise pytest.UsageError("--gpus-per-run: no GPUs found (nvidia-smi lists none); give them with --gpus 0,1")
    workers = int(workerinput["workercount"]) if workerinput else int(getattr(config.option, "numprocesses", 0) or 1)
    index = int(str(workerinput["workerid"]).removeprefix("gw")) if workerinput else 0
    per_run = _int(config, "gpus_per_run", 1) if per_run_raw else max(1, len(pool) // workers)
    if per_run * workers > len(pool):
        raise pytest.UsageError(f"--gpus-per-run {per_run}: {workers} worker(s) x {per_run} GPU(s) is more than the "
                                f"{len(pool)} GPU(s) given ({','.join(pool)}); no GPU may be shared")
    return tuple(pool[index::workers][:per_run])


def _visible_gpus() -> list[str]:
    import shutil
    import subprocess

    if not shutil.which("nvidia-smi"):
        return []
    out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout
    return [str(i) for i, line in enumerate(x for x in out.splitlines() if x.startswith("GPU "))]
