"""The live state of one pytest-mlgym run: the tasks found, what has finished, the local model
servers it started, and what the controller builds at the end; the run's options are a frozen
:class:`~pytest_mlgym.config.Options` beside it.

Built once in ``pytest_configure`` (on the controller and on every xdist worker) and kept in
``config.stash``. Every bad option or unusable sandbox/agent becomes a one-line
``pytest.UsageError`` before any task runs.
"""
from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from . import agents, sandbox, selection
from .agents import AgentError
from .config import Options
from .results import ResultsStore, RunRecord
from .sandbox import truncate
from .task import Task, TaskError, discover

# a test whose episode the infrastructure cut short (status infra_error): its record, for the plugin's
# report hook, which makes the test an error
INFRA_RECORD = pytest.StashKey[RunRecord]()

if TYPE_CHECKING:  # the summary's module imports numpy: not at collection
    from .report.summary import Summary
    from .report.trust import IsolationInfo


@dataclass
class MLGymSession:
    """The live state of one run: its options (frozen), the tasks found, what has finished, the local
    model servers it started, and what the controller builds at the end."""
    config: pytest.Config
    options: Options
    id: str
    tasks: list[Task]
    broken: dict[str, TaskError]
    done: dict[tuple, RunRecord] = field(default_factory=dict)  # --mlgym-resume: (task, agent, seed, size) -> record
    summary: Summary | None = None  # built on the controller at the end of the run (report.summary.build)
    interrupted: dict | None = None  # Ctrl-C: how many runs finished, were interrupted, did not start
    servers: list = field(default_factory=list)  # local model servers this session started
    saved_sigterm: Any = None  # the SIGTERM handler before the plugin's (given back at the end)
    server_urls: dict[str, str] = field(default_factory=dict)  # agent name -> its server's base URL
    saved_env: dict[str, str | None] = field(default_factory=dict)  # restored at unconfigure
    stored: tuple[str, list[RunRecord]] | None = None  # controller: (session, records) of the stored run
    gates: list = field(default_factory=list)  # controller, at the end: the gates' results
    comparison: dict | None = None  # controller, at the end: this run against the stored one
    isolation: IsolationInfo | None = None  # trust.info of its sandbox (controller: check_isolation; workers: a copy)
    workerinput: dict | None = None  # an xdist worker: what its controller sent (None on the controller)

    @classmethod
    def from_config(cls, config: pytest.Config) -> "MLGymSession":
        hook = config.pluginmanager.hook
        policies, backends = dict(agents.POLICIES), dict(sandbox.BACKENDS)  # plugins' additions last one run

        def restore() -> None:
            agents.POLICIES.clear()
            agents.POLICIES.update(policies)
            sandbox.BACKENDS.clear()
            sandbox.BACKENDS.update(backends)
        config.add_cleanup(restore)
        for extra in hook.pytest_mlgym_policies(config=config):
            agents.POLICIES.update(extra)
        for extra in hook.pytest_mlgym_sandboxes(config=config):
            sandbox.BACKENDS.update(extra)
        options = Options.resolve(config)
        tasks, broken = discover(list(options.task_roots))
        workerinput: dict | None = getattr(config, "workerinput", None)
        sid: str = workerinput["mlgym_session"] if workerinput else uuid.uuid4().hex[:12]
        done: dict[tuple, RunRecord] = {}
        if options.resume:
            sid, done = resumed(ResultsStore(options.report_dir / "results.jsonl"), sid if workerinput else None)
        return cls(config=config, options=options, id=sid, tasks=tasks, broken=broken, done=done,
                   workerinput=workerinput)

    def load_stored(self) -> None:
        """Controller, at start: read the stored run of ``--mlgym-compare`` (before this session appends
        anything to the same file); a missing or empty file is a one-line usage error."""
        if self.options.compare is None:
            return
        from .report.gates import StoredRunError, stored_run
        try:
            self.stored = stored_run(self.options.compare, exclude_session=self.id)
        except StoredRunError as e:
            raise pytest.UsageError(f"--mlgym-compare: {e}") from None

    @property
    def is_controller(self) -> bool:
        return self.workerinput is None

    @property
    def store(self) -> ResultsStore:
        return ResultsStore(self.options.report_dir / "results.jsonl")

    @property
    def hidden(self) -> tuple[Path, ...]:
        """Host paths no agent may see: task folders (evaluators, answers), the data cache, the reports."""
        return (*self.options.task_roots, self.options.cache_dir, self.options.report_dir)

    @property
    def sandbox_config(self) -> sandbox.SandboxConfig:
        """The session's options for its sandboxes (each episode adds its task's limits)."""
        o = self.options
        return sandbox.SandboxConfig(docker=sandbox.DockerOptions(hosts=o.docker_hosts, image=o.docker_image))

    @property
    def sandbox_backend(self) -> type[sandbox.Sandbox]:
        return sandbox.backend(self.options.backend)

    def check_backend(self) -> None:
        """Fail at start, in one line, when the chosen sandbox cannot run here (any backend's ``check``)."""
        try:
            self.sandbox_backend.check(self.sandbox_config)
        except sandbox.SandboxError as e:
            raise pytest.UsageError(f"--sandbox {self.options.backend}: {e}") from None

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
        o = self.options
        self.isolation = trust.info(o.backend, plan.mode or o.backend, required=o.min_isolation,
                                    forced=plan.forced, machine_best=plan.machine_best)
        if self.options.min_isolation and (why := trust.refusal(self.isolation, self.options.min_isolation)):
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
        for spec in self.options.agents:
            try:
                spec.check()
            except AgentError as e:
                raise pytest.UsageError(f"--agent {e}") from None

    def start_servers(self) -> dict[str, str]:
        """Start the local model server of every agent that asks for one (``serve:``); the workers get
        its URL. Returns agent name -> base URL."""
        urls = {}
        for spec in self.options.agents:
            if spec.params.get("serve") and not spec.params.get("api_base"):
                from .agents.serve import LlamaServer

                self.options.report_dir.mkdir(parents=True, exist_ok=True)
                try:
                    log = self.options.report_dir / f"{spec.name}-server.log"
                    workers = int(getattr(self.config.option, "numprocesses", 0) or 0)  # they share its cores
                    server = LlamaServer(**{"workers": workers, **spec.params["serve"]}, log=log)
                except AgentError as e:
                    raise pytest.UsageError(f"--agent {spec.name}: {e}") from None
                self.servers.append(server)
                urls[spec.name] = spec.params["api_base"] = server.url
        return urls

    def use_servers(self, urls: dict[str, str]) -> None:
        for spec in self.options.agents:
            if spec.name in urls:
                spec.params["api_base"] = urls[spec.name]

    def stop_servers(self) -> None:
        while self.servers:
            self.servers.pop().stop()

    def header(self) -> list[str]:
        """The lines under pytest's own header: the run's settings, and the isolation warning."""
        i, o = self.isolation, self.options
        line = (f"mlgym: {len(self.tasks)} tasks ({o.size}), agents: {', '.join(a.name for a in o.agents)}, "
                f"seeds: {o.seeds}, max steps: {o.max_steps}, sandbox: {o.backend}"
                + (f", isolation: {i['mode']} [{i['description']}]" if i else "")
                + (f" (required: {o.min_isolation} or better)" if o.min_isolation else "")
                + self.sandbox_backend.placement(self.sandbox_config)
                + f", reports: {o.report_dir}"
                + (f"; {len(self.broken)} broken task.yaml (reported as errors)" if self.broken else "")
                + (f"; resuming session {self.id}: {len(self.done)} runs already finished"
                   + (f", {n} that failed for infrastructure run again" if (n := infra_failed(
                       self.store, self.id, self.done)) else "") if self.options.resume else ""))
        warning = self.isolation_warning()
        return [line, warning] if warning else [line]

    def record(self, node: pytest.Item, rec: RunRecord, trajectory: list[dict] | None = None,
               store: bool = True) -> None:
        """Store one finished run (and its trajectory) and attach its key numbers to the test (JUnit
        properties); ``store=False`` for a run already in the store (``--mlgym-resume``)."""
        from .report.text import clean

        rec.verdict = clean(rec.verdict)  # the test's failure message: it may quote the agent (its crash, its artefact)
        if trajectory is not None:
            folder = self.options.report_dir
            rec.trajectory = str(save_trajectory(folder, rec, trajectory).relative_to(folder))
        if store:
            self.store.append(rec)
        for key in ("task", "agent", "seed", "size", "metric", "direction", "baseline", "best_attempt",
                    "best_submission", "oracle_best_attempt", "protocol", "status", "passed", "steps", "cost_usd",
                    "tokens", "wall_s", "isolation"):
            node.user_properties.append((key, getattr(rec, key)))
        if rec.reason:
            node.user_properties.append(("reason", rec.reason))
        if rec.status == "infra_error":  # the plugin reports the test as an error (plugin.pytest_runtest_makereport)
            node.user_properties.append(("infra", rec.infra or "unknown"))
            node.stash[INFRA_RECORD] = rec


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
    finished runs by (task, agent, seed, size), each its latest record. A run whose latest record
    ended in ``infra_error`` is not finished (the provider failed, not the agent): it runs again, and
    its new record is the one every report uses (``selection``: the latest record of a run wins)."""
    records = store.read()
    if not records:
        if session:
            return session, {}
        raise pytest.UsageError(f"--mlgym-resume: nothing to resume: {store.path} has no runs")
    session = session or selection.last_session(records)
    assert session is not None  # records is not empty
    latest: dict[tuple, RunRecord] = {}
    for r in sorted(selection.in_sessions(records, [session]), key=lambda r: r.finished_at):  # stable: file order
        latest[(r.task, r.agent, r.seed, r.size)] = r
    return session, {k: r for k, r in latest.items() if r.status != "infra_error"}


def infra_failed(store: ResultsStore, session: str, done: dict[tuple, RunRecord]) -> int:
    """How many runs of ``session`` ``--mlgym-resume`` runs again because they failed for infrastructure."""
    return len({(r.task, r.agent, r.seed, r.size) for r in store.read(session=session)
                if r.status == "infra_error"} - set(done))
