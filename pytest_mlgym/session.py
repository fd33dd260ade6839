"""Per-run state of the plugin: resolved options, tasks, agents, and the results store.

Built once in ``pytest_configure`` (on the controller and on every xdist worker) and kept in
``config.stash``. Every bad option becomes a one-line ``pytest.UsageError`` here, before any
task runs.
"""
from __future__ import annotations

import math
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from . import agents, sandbox
from .agents import AgentError, AgentSpec
from .results import ResultsStore, RunRecord
from .sandbox import truncate
from .task import SIZES, Task, TaskError, default_cache_dir, discover

# option name -> (command-line flag, ini name, default, help); repeatable flags collect lists
OPTIONS = {
    "agent": ("--agent", "mlgym_agents", "baseline",
              "agent to run (repeatable): agents/NAME.yaml, a built-in policy, or replay:PATH"),
    "seeds": ("--seeds", "mlgym_seeds", "1", "independent runs per task and agent"),
    "max_steps": ("--max-steps", "mlgym_max_steps", "50", "agent steps per episode"),
    "sandbox": ("--sandbox", "mlgym_sandbox", "local", "where agent commands run: local or docker"),
    "task_size": ("--task-size", "mlgym_task_size", "lite", "task size: lite (a CPU in minutes) or full (published scale)"),
    "report_dir": ("--mlgym-report-dir", "mlgym_report_dir", "reports", "where results.jsonl and summary.json are written"),
    "tasks_dir": ("--mlgym-tasks-dir", "mlgym_tasks_dirs", "",
                  "a folder of task folders to add (repeatable) to the default <rootdir>/tasks, which the ini's "
                  "mlgym_tasks_dirs replaces"),
    "agents_dir": ("--mlgym-agents-dir", "mlgym_agents_dirs", "", "folders of agent yaml files (default: <rootdir>/agents)"),
    "gpus": ("--gpus", "mlgym_gpus", "", "GPU ids the sandboxes may use, e.g. 0,1,2,3; split across xdist workers "
             "so that no two running episodes share one"),
    "gpus_per_run": ("--gpus-per-run", "mlgym_gpus_per_run", "", "GPUs each episode gets (default: its worker's "
                     "whole share); with no --gpus, from every GPU nvidia-smi lists"),
    "docker_image": ("--docker-image", "mlgym_docker_image", "", "a self-contained image for --sandbox docker "
                     "(docker/Dockerfile); default: one built offline that mounts this host's Python read-only"),
    "docker_host": ("--docker-host", "mlgym_docker_hosts", "",
                    "Docker Engine URL for --sandbox docker (repeatable: each episode goes to the least busy; "
                    "default: DOCKER_HOST)"),
    "fail_under_aup": ("--mlgym-fail-under-aup", "mlgym_fail_under_aup", "",
                       "exit non-zero when an agent's AUP (best submission) is below X; every agent under test "
                       "is gated, the recorded baseline is not"),
    "compare": ("--mlgym-compare", "mlgym_compare", "",
                "a stored run to compare with (a results.jsonl or its report folder; its last session): "
                "per-task diff and AUP change per agent at the end"),
    "max_regression": ("--mlgym-max-regression", "mlgym_max_regression", "",
                       "with --mlgym-compare: exit non-zero when an agent's AUP (best submission) drops by more "
                       "than D"),
    "protocol": ("--mlgym-protocol", "mlgym_protocol", "sealed",
                 "sealed (default): validate shows a dev split, the hidden test split is scored for the record "
                 "only; mlgym: MLGym's protocol (validate shows the test score), to compare with published numbers"),
    "min_isolation": ("--mlgym-min-isolation", "mlgym_min_isolation", "",
                      "stop at start when the sandbox's isolation is below LEVEL: none < unshare < bwrap "
                      "(--sandbox docker counts as bwrap)"),
}
REPEATABLE = {"agent", "tasks_dir", "agents_dir", "docker_host"}
LIVE = ("on", "off", "auto")  # --mlgym-live / --mlgym-no-live, ini mlgym_live; auto: on with -v


def _setting(config: pytest.Config, name: str) -> list[str]:
    """The option from the command line, else from the ini file, else its default (as a list)."""
    _, ini, default, _ = OPTIONS[name]
    value = config.getoption(f"mlgym_{name}")
    if value in (None, []):
        value = config.getini(ini) or default
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
        raise pytest.UsageError(f"{OPTIONS[name][0]}: expected a number >= 0, got '{raw}'")
    return x


def _level(config: pytest.Config) -> str | None:
    """``--mlgym-min-isolation`` (or ini ``mlgym_min_isolation``): a level of ``trust.LEVELS``, or None."""
    from .report.trust import LEVELS

    values = _setting(config, "min_isolation")
    if not values:
        return None
    if (level := values[-1].lower()) not in LEVELS:
        raise pytest.UsageError(f"{OPTIONS['min_isolation'][0]}: unknown level '{values[-1]}'; choose from "
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
    ini = [Path(p) for p in config.getini(OPTIONS["tasks_dir"][1]) or []]
    ini_base = config.inipath.parent if config.inipath else config.rootpath
    default = config.rootpath / "tasks"
    roots = [p if p.is_absolute() else ini_base / p for p in ini] or ([default] if default.is_dir() else [])
    base = config.invocation_params.dir
    roots += [p if p.is_absolute() else base / p for p in map(Path, config.getoption("mlgym_tasks_dir") or [])]
    for extra in config.pluginmanager.hook.pytest_mlgym_task_dirs(config=config):
        roots += [Path(p) for p in extra]
    return list(dict.fromkeys(p.resolve() for p in roots))


@dataclass
class MLGymSession:
    config: pytest.Config
    id: str
    agents: list[AgentSpec]
    seeds: int
    max_steps: int
    backend: str
    size: str
    report_dir: Path
    tasks: list[Task]
    broken: dict[str, TaskError]
    task_roots: list[Path]
    cache_dir: Path = field(default_factory=default_cache_dir)
    summary: dict | None = None  # built on the controller at the end of the run
    interrupted: dict | None = None  # Ctrl-C: how many runs finished, were interrupted, did not start
    servers: list = field(default_factory=list)  # local model servers this session started
    server_urls: dict[str, str] = field(default_factory=dict)  # agent name -> its server's base URL
    saved_env: dict[str, str | None] = field(default_factory=dict)  # restored at unconfigure
    gpus: tuple[str, ...] = ()  # the GPUs each episode of this process gets (its share of --gpus)
    done: dict[tuple, RunRecord] = field(default_factory=dict)  # --mlgym-resume: (task, agent, seed, size) -> record
    fail_under_aup: float | None = None  # gate: every agent's AUP (best submission) >= this
    compare: Path | None = None  # the stored run to compare with (results.jsonl or its folder)
    max_regression: float | None = None  # gate: no agent's AUP drops by more than this against `compare`
    stored: tuple[str, list[RunRecord]] | None = None  # controller: (session, records) of the stored run
    live: bool = False  # one line per episode step in the terminal
    gates: list = field(default_factory=list)  # controller, at the end: the gates' results
    comparison: dict | None = None  # controller, at the end: this run against the stored one
    min_isolation: str | None = None  # --mlgym-min-isolation: none, unshare or bwrap
    protocol: str = "sealed"  # --mlgym-protocol: sealed or mlgym (pytest_mlgym.env.PROTOCOLS)
    isolation: dict | None = None  # trust.info of this session's sandbox (controller: check_isolation; workers: its copy)

    @classmethod
    def from_config(cls, config: pytest.Config) -> "MLGymSession":
        hook = config.pluginmanager.hook
        saved = dict(agents.POLICIES), dict(sandbox.BACKENDS)  # plugins' additions last as long as this run
        config.add_cleanup(lambda: [(d.clear(), d.update(old)) for d, old in zip((agents.POLICIES, sandbox.BACKENDS), saved)])
        for extra in hook.pytest_mlgym_policies(config=config):
            agents.POLICIES.update(extra)
        for extra in hook.pytest_mlgym_sandboxes(config=config):
            sandbox.BACKENDS.update(extra)

        size = _setting(config, "task_size")[-1]
        if size not in SIZES:
            raise pytest.UsageError(f"--task-size: unknown size '{size}'; valid sizes: {', '.join(SIZES)}")
        backend = _setting(config, "sandbox")[-1]
        if backend not in sandbox.BACKENDS:
            raise pytest.UsageError(f"--sandbox: unknown sandbox '{backend}'; valid: {', '.join(sandbox.BACKENDS)}")
        agent_dirs = _paths(config, "agents_dir", config.rootpath / "agents", hook.pytest_mlgym_agent_dirs)
        names = list(dict.fromkeys(_setting(config, "agent")))  # repeated names run once
        try:
            specs = [agents.resolve(n, agent_dirs) for n in names]
        except AgentError as e:
            raise pytest.UsageError(f"--agent: {e}") from None
        roots = _task_roots(config)
        tasks, broken = discover(roots)
        report_dir = Path(_setting(config, "report_dir")[-1])
        workerinput = getattr(config, "workerinput", None)
        gpus = gpu_share(config, workerinput)
        report_dir = report_dir if report_dir.is_absolute() else config.invocation_params.dir / report_dir
        sid, done = workerinput["mlgym_session"] if workerinput else uuid.uuid4().hex[:12], {}
        if config.getoption("mlgym_resume"):
            sid, done = resumed(ResultsStore(report_dir / "results.jsonl"), workerinput and sid)
        compare = _setting(config, "compare")
        compare = Path(compare[-1]) if compare else None
        if compare is not None and not compare.is_absolute():
            compare = config.invocation_params.dir / compare
        if compare is not None and compare.is_dir():
            compare = compare / "results.jsonl"
        fail_under, max_regression = _number(config, "fail_under_aup"), _number(config, "max_regression")
        protocol = _setting(config, "protocol")[-1]
        if protocol not in ("sealed", "mlgym"):
            raise pytest.UsageError(f"--mlgym-protocol: unknown protocol '{protocol}'; choose sealed or mlgym")
        if max_regression is not None and compare is None:
            raise pytest.UsageError("--mlgym-max-regression: needs --mlgym-compare OLD.jsonl, the stored run to compare with")
        return cls(gpus=gpus, done=done, fail_under_aup=fail_under, compare=compare, max_regression=max_regression,
            live=_live(config), min_isolation=_level(config), protocol=protocol,
            config=config, id=sid,
            agents=specs, seeds=_int(config, "seeds", 1), max_steps=_int(config, "max_steps", 1),
            backend=backend, size=size, tasks=tasks, broken=broken, task_roots=roots,
            report_dir=report_dir,
        )

    def load_stored(self) -> None:
        """Controller, at start: read the stored run of ``--mlgym-compare`` (before this session appends
        anything to the same file); a missing or empty file is a one-line usage error."""
        if self.compare is None:
            return
        from .report.gates import StoredRunError, stored_run
        try:
            self.stored = stored_run(self.compare, exclude_session=self.id)
        except StoredRunError as e:
            raise pytest.UsageError(f"--mlgym-compare: {e}") from None

    @property
    def explicit_agents(self) -> bool:
        """Were the agents named (``--agent`` or ini), not the default?"""
        return bool(self.config.getoption("mlgym_agent") or self.config.getini("mlgym_agents"))

    @property
    def is_controller(self) -> bool:
        return not hasattr(self.config, "workerinput")

    @property
    def store(self) -> ResultsStore:
        return ResultsStore(self.report_dir / "results.jsonl")

    @property
    def hidden(self) -> tuple[Path, ...]:
        """Host paths no agent may see: task folders (evaluators, answers), the data cache, the reports."""
        return (*self.task_roots, self.cache_dir, self.report_dir)

    @property
    def sandbox_config(self) -> sandbox.SandboxConfig:
        """The session's options for its sandboxes (each episode adds its task's limits)."""
        image = _setting(self.config, "docker_image")
        return sandbox.SandboxConfig(docker=sandbox.DockerOptions(hosts=tuple(self.docker_hosts),
                                                                  image=image[-1] if image else None))

    @property
    def sandbox_backend(self) -> type[sandbox.Sandbox]:
        return sandbox.backend(self.backend)

    def check_backend(self) -> None:
        """Fail at start, in one line, when the chosen sandbox cannot run here (any backend's ``check``)."""
        try:
            self.sandbox_backend.check(self.sandbox_config)
        except sandbox.SandboxError as e:
            raise pytest.UsageError(f"--sandbox {self.backend}: {e}") from None

    def cleanup_sandboxes(self) -> None:
        """Controller, at the end: nothing of this session's sandboxes outlives it, even after a crash."""
        try:
            self.sandbox_backend.cleanup(self.id, self.sandbox_config)
        except sandbox.SandboxError:
            pass

    def check_isolation(self) -> None:
        """Controller, at start: what this session's sandbox guarantees (``self.isolation``; workers get
        a copy), a one-line usage error when it is below ``--mlgym-min-isolation``, and a pytest
        warning when it is weaker than its backend's best."""
        from .report import trust

        try:
            plan = self.sandbox_backend.isolation_plan()
        except sandbox.SandboxError as e:  # a bad MLGYM_ISOLATION
            raise pytest.UsageError(str(e)) from None
        self.isolation = trust.info(self.backend, plan.mode or self.backend, required=self.min_isolation,
                                    forced=plan.forced, machine_best=plan.machine_best)
        if self.min_isolation and (why := trust.refusal(self.isolation, self.min_isolation)):
            raise pytest.UsageError(why)
        if warning := trust.warning(self.isolation):  # also in pytest's warnings summary; -W error makes it fatal
            try:
                self.config.issue_config_time_warning(trust.IsolationWarning(warning.removeprefix("WARNING: ")), 2)
            except trust.IsolationWarning as e:
                raise pytest.UsageError(f"{e} (-W turned this warning into an error)") from None

    def isolation_warning(self) -> str | None:
        """The loud line when this session's isolation is weaker than its backend's best."""
        from .report import trust

        return trust.warning(self.isolation) if self.isolation else None

    def check_agents(self) -> None:
        """Fail at start, in one line, when an agent cannot run here (e.g. its API key is not set)."""
        for spec in self.agents:
            try:
                spec.check()
            except AgentError as e:
                raise pytest.UsageError(f"--agent {e}") from None

    def start_servers(self) -> dict[str, str]:
        """Start the local model server of every agent that asks for one (``serve:``); the workers get
        its URL. Returns agent name -> base URL."""
        urls = {}
        for spec in self.agents:
            if spec.params.get("serve") and not spec.params.get("api_base"):
                from .agents.serve import LlamaServer

                self.report_dir.mkdir(parents=True, exist_ok=True)
                try:
                    server = LlamaServer(**spec.params["serve"], log=self.report_dir / f"{spec.name}-server.log")
                except AgentError as e:
                    raise pytest.UsageError(f"--agent {spec.name}: {e}") from None
                self.servers.append(server)
                urls[spec.name] = spec.params["api_base"] = server.url
        return urls

    def use_servers(self, urls: dict[str, str]) -> None:
        for spec in self.agents:
            if spec.name in urls:
                spec.params["api_base"] = urls[spec.name]

    def stop_servers(self) -> None:
        while self.servers:
            self.servers.pop().stop()

    @property
    def docker_hosts(self) -> list[str]:
        return _setting(self.config, "docker_host")

    def header(self) -> list[str]:
        """The lines under pytest's own header: the run's settings, and the isolation warning."""
        i = self.isolation or {}
        line = (f"mlgym: {len(self.tasks)} tasks ({self.size}), agents: {', '.join(a.name for a in self.agents)}, "
                f"seeds: {self.seeds}, max steps: {self.max_steps}, sandbox: {self.backend}"
                + (f", isolation: {i['mode']} [{i['description']}]" if i else "")
                + (f" (required: {self.min_isolation} or better)" if self.min_isolation else "")
                + self.sandbox_backend.placement(self.sandbox_config)
                + f", reports: {self.report_dir}"
                + (f"; {len(self.broken)} broken task.yaml (reported as errors)" if self.broken else "")
                + (f"; resuming session {self.id}: {len(self.done)} runs already finished"
                   if self.config.getoption("mlgym_resume") else ""))
        warning = self.isolation_warning()
        return [line, warning] if warning else [line]

    def record(self, node: pytest.Item, rec: RunRecord, trajectory: list[dict] | None = None,
               store: bool = True) -> None:
        """Store one finished run (and its trajectory) and attach its key numbers to the test (JUnit
        properties); ``store=False`` for a run already in the store (``--mlgym-resume``)."""
        from .report.text import clean

        rec.verdict = clean(rec.verdict)  # the test's failure message: it may quote the agent (its crash, its artefact)
        if trajectory is not None:
            rec.trajectory = str(save_trajectory(self.report_dir, rec, trajectory).relative_to(self.report_dir))
        if store:
            self.store.append(rec)
        for key in ("task", "agent", "seed", "size", "metric", "direction", "baseline", "best_attempt",
                    "best_submission", "oracle_best_attempt", "protocol", "status", "passed", "steps", "cost_usd", "tokens", "wall_s", "isolation"):
            node.user_properties.append((key, getattr(rec, key)))
        if rec.reason:
            node.user_properties.append(("reason", rec.reason))


TRAJECTORY_OBSERVATION_CHARS = 4000  # observations are kept head and tail, with a marker


def save_trajectory(report_dir: Path, rec: RunRecord, trajectory: list[dict]) -> Path:
    """``<report dir>/trajectories/<task>/<agent>/<seed>.jsonl``: one line per step (action, thought,
    observation cut to its head and tail, reward, time), written whole and replaced atomically."""
    import json
    import re

    path = report_dir / "trajectories" / rec.task / re.sub(r"[^\w.-]+", "_", rec.agent) / f"{rec.seed}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for step in trajectory:
            step = {**step, "observation": truncate(str(step.get("observation", "")), TRAJECTORY_OBSERVATION_CHARS)}
            f.write(json.dumps(step, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path


def resumed(store: ResultsStore, session: str | None = None) -> tuple[str, dict[tuple, RunRecord]]:
    """``--mlgym-resume``: the session to continue (the last one recorded, unless given) and its
    finished runs by (task, agent, seed, size); every finished run has exactly one record."""
    records = store.read()
    if not records:
        if session:
            return session, {}
        raise pytest.UsageError(f"--mlgym-resume: nothing to resume: {store.path} has no runs")
    session = session or records[-1].session
    done: dict[tuple, RunRecord] = {}
    for r in records:
        if r.session == session:
            done.setdefault((r.task, r.agent, r.seed, r.size), r)
    return session, done


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
    return [str(i) for i, line in enumerate(l for l in out.splitlines() if l.startswith("GPU "))]
