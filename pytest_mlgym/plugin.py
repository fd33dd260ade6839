"""pytest hooks only: options, parametrisation, fixtures, and the end-of-run report.

Every (task, agent, seed) becomes one test, ``test_x[prisoners_dilemma-baseline-s0]``. Workers
append run records to ``results.jsonl``; the controller alone reads this session's records
back at the end and writes the summary, so reports are correct under pytest-xdist.
"""
from __future__ import annotations

import os
import signal
import threading
import types
from pathlib import Path

import pytest

from .config import OPTIONS, REPEATABLE
from .report import live, outcome
from .session import MLGymSession

SESSION = pytest.StashKey[MLGymSession]()
PROGRESS = pytest.StashKey["Progress"]()
LIVE = pytest.StashKey["live.Printer | live.FileWriter"]()  # controller: a Printer; xdist worker: a FileWriter
METAVARS = {"fail_under_aup": "X", "compare": "OLD.jsonl", "max_regression": "D", "min_isolation": "LEVEL"}
SLOW_SECONDS = 10


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import hookspec
    pluginmanager.add_hookspecs(hookspec)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mlgym", "pytest-mlgym: research agents on ML tasks")
    for name, (flag, ini, default, help_) in OPTIONS.items():
        repeat = name in REPEATABLE
        group.addoption(flag, dest=f"mlgym_{name}", action="append" if repeat else "store", default=None,
                        metavar=METAVARS.get(name, name.split("_")[-1].upper()),
                        help=f"{help_} (default: {default or 'see help'}; ini: {ini})")
        parser.addini(ini, help_, type="args" if repeat else "string", default=None)
    group.addoption("--mlgym-live", dest="mlgym_live", action="store_const", const="on", default=None,
                    help="one line per step of every running episode, also under xdist (default: with -v; "
                         "ini: mlgym_live = on|off|auto)")
    group.addoption("--mlgym-no-live", dest="mlgym_live", action="store_const", const="off",
                    help="no step lines, even with -v")
    parser.addini("mlgym_live", "live step lines: on, off or auto (on with -v)", default=None)
    group.addoption("--mlgym-resume", action="store_true", default=False,
                    help="continue the last session in results.jsonl: runs it finished are not run again")
    group.addoption("--mlgym-cleanup", action="store_true", default=False,
                    help="remove the Docker containers left by crashed pytest-mlgym sessions, then exit")


def pytest_cmdline_main(config: pytest.Config):
    if config.getoption("mlgym_cleanup"):
        from .sandbox import DockerOptions, SandboxConfig, SandboxError, backend

        options = SandboxConfig(docker=DockerOptions(hosts=tuple(config.getoption("mlgym_docker_host") or ())))
        try:
            n = backend("docker").cleanup(None, options)
        except SandboxError as e:
            raise pytest.UsageError(f"--mlgym-cleanup: {e}") from None
        print(f"mlgym: removed {n} container{'s' * (n != 1)} left by crashed sessions")
        return 0
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: takes more than about 10 s (a task whose baseline does)")
    s = MLGymSession.from_config(config)
    # the session's identity, which sandboxes label what they start with, in this process and (inherited)
    # in every xdist worker, so that its leftovers, and a crashed session's, can be found; options travel
    # in the session's SandboxConfig instead
    s.saved_env = {k: os.environ.get(k) for k in ("MLGYM_SESSION_ID", "MLGYM_SESSION_OWNER")}
    os.environ["MLGYM_SESSION_ID"] = s.id  # containers are labelled with it (workers get the same id)
    if s.is_controller:
        os.environ["MLGYM_SESSION_OWNER"] = str(os.getpid())
        s.check_backend()
        s.check_isolation()
        s.check_agents()
        s.load_stored()
        s.server_urls = s.start_servers()
    elif s.workerinput is not None:
        s.use_servers(s.workerinput.get("mlgym_servers", {}))
        s.isolation = s.workerinput.get("mlgym_isolation")  # the controller decided
    config.stash[SESSION] = s
    s.saved_sigterm = _sigterm_as_interrupt()
    config.pluginmanager.register(_task_fixtures(s), "mlgym-task-fixtures")
    config.pluginmanager.register(outcome, "mlgym-outcome")  # an infra_error run's test is an error
    if s.is_controller:
        config.stash[PROGRESS] = Progress()
        config.pluginmanager.register(config.stash[PROGRESS], "mlgym-progress")
        config.pluginmanager.register(outcome.InfraJUnit(config), "mlgym-infra-junit")
    if s.is_controller and s.options.live:
        config.stash[LIVE] = live.Printer(config)
        config.pluginmanager.register(config.stash[LIVE], "mlgym-live")
    elif s.workerinput is not None and (folder := s.workerinput.get("mlgym_live")):
        config.stash[LIVE] = live.FileWriter(Path(folder) / f"{s.workerinput['workerid']}.log")


def _sigterm_as_interrupt():
    """SIGTERM (a CI job's time-out, ``kill``) ends the run as Ctrl-C does: the episodes running are
    interrupted, the summary of what finished is written, servers and sandboxes are stopped. A second
    SIGTERM while that happens is ignored (a SIGKILL is not). Returns the handler it replaced."""
    def interrupt(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt("SIGTERM")

    if threading.current_thread() is not threading.main_thread():
        return None  # signals reach the main thread only (an in-process run from a thread)
    return signal.signal(signal.SIGTERM, interrupt)


def pytest_unconfigure(config: pytest.Config) -> None:
    if (writer := config.stash.get(LIVE, None)) is not None:
        writer.stop() if isinstance(writer, live.Printer) else writer.close()
    if SESSION in config.stash:
        s = state(config)
        if s.saved_sigterm is not None:  # an in-process run (pytester) gives its caller's handler back
            signal.signal(signal.SIGTERM, s.saved_sigterm)
        s.stop_servers()
        if s.is_controller:  # nothing outlives the session, even after a crash (a killed worker's sandboxes)
            s.cleanup_sandboxes()
        for k, v in s.saved_env.items():  # an in-process run (pytester) leaves its caller's as they were
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def state(config: pytest.Config) -> MLGymSession:
    return config.stash[SESSION]


class Progress:
    """Controller: the tests that started and have not finished, so that an interrupted run can say
    how many runs it left unrecorded."""

    def __init__(self) -> None:
        self.started = 0
        self.running: set[str] = set()

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self.started += 1
        self.running.add(nodeid)

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        self.running.discard(nodeid)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when not in ("setup", "call", "teardown"):  # xdist: the worker running it crashed
            self.running.discard(report.nodeid)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """xdist controller: every worker records under the controller's session id."""
    node.workerinput["mlgym_session"] = state(node.config).id
    node.workerinput["mlgym_servers"] = state(node.config).server_urls
    node.workerinput["mlgym_isolation"] = state(node.config).isolation
    if (printer := node.config.stash.get(LIVE, None)) is not None:  # workers append step lines to files
        folder = state(node.config).options.report_dir / "live" / state(node.config).id
        printer.watch(folder)
        node.workerinput["mlgym_live"] = str(folder)


def pytest_report_header(config: pytest.Config) -> list[str]:
    return state(config).header()


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """With ``-q`` or ``--no-header`` pytest shows no header: the isolation warning is written anyway."""
    s, tr = state(session.config), session.config.pluginmanager.get_plugin("terminalreporter")
    if s.is_controller and tr is not None and (not tr.showheader or tr.no_header) and (w := s.isolation_warning()):
        tr.write_line(w, red=True, bold=True)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Inside a task folder only its ``tests/`` is ever collected (its workspace is the agent's, its
    private/ the evaluator's), and only in a test run, never in a benchmark run (tasks/CONTRACT.md,
    "Tests of a task"): a run with no paths (``pytest``, testpaths) or one that names the task folder
    or a path inside it collects them; ``pytest tasks ...`` collects the benchmark alone."""
    if (collection_path.parent / "task.yaml").is_file():  # beside task.yaml: only tests/
        return True if collection_path.name != "tests" else None
    if collection_path.is_dir() and (collection_path / "task.yaml").is_file():
        return True if not task_tests_wanted(config, collection_path) else None
    return None


def task_tests_wanted(config: pytest.Config, task_dir: Path) -> bool:
    """Does this run collect the tests of the task folder ``task_dir``? Yes when it names no paths
    (pytest's testpaths or the invocation folder) or names ``task_dir`` or a path inside it."""
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        return True
    base, task_dir = config.invocation_params.dir, task_dir.resolve()
    for arg in config.args:
        path = Path(arg.split("::", 1)[0])
        if (base / path).resolve().is_relative_to(task_dir):
            return True
    return False


# -- parametrisation and fixtures ------------------------------------------------------------------
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    s = state(metafunc.config)
    names = metafunc.fixturenames
    if "task" in names and "task" not in _direct_params(metafunc):
        params = [pytest.param(t, id=t.id, marks=[pytest.mark.slow] if _slow(t, s.options.size) else [])
                  for t in sorted(s.tasks, key=lambda t: t.id)]
        params += [pytest.param(err, id=name) for name, err in sorted(s.broken.items())]
        metafunc.parametrize("task", params, indirect=True)
    if "agent" in names and "agent" not in _direct_params(metafunc):
        specs = s.options.agents
        metafunc.parametrize("agent", specs, ids=[_agent_id(a.name) for a in specs], indirect=True)
    if "mlgym_seed" in names and "mlgym_seed" not in _direct_params(metafunc):
        metafunc.parametrize("mlgym_seed", range(s.options.seeds), ids=[f"s{i}" for i in range(s.options.seeds)])


def _slow(task, size: str) -> bool:
    """A task whose baseline takes over ~10 s (or has not been timed) is marked ``slow``."""
    spec = task.spec.sizes.get(size)
    return spec is None or spec.seconds is None or spec.seconds > SLOW_SECONDS


def _direct_params(metafunc: pytest.Metafunc) -> set[str]:
    return {name for m in metafunc.definition.iter_markers("parametrize") for name in
            (m.args[0].split(",") if isinstance(m.args[0], str) else m.args[0])}


def _agent_id(name: str) -> str:
    policy, sep, arg = name.partition(":")
    return f"{policy}-{Path(arg).stem}" if sep else name


@pytest.fixture
def mlgym(request: pytest.FixtureRequest) -> MLGymSession:
    """The run's settings: agents, seeds, size, sandbox, tasks, results store."""
    return state(request.config)


@pytest.fixture
def mlgym_seed() -> int:
    """The run index of this test (``-s<seed>`` in its id); 0 unless ``--seeds`` asks for more."""
    return 0


@pytest.fixture
def agent(request: pytest.FixtureRequest):
    """The agent under test (an AgentSpec; ``task.run(agent)`` makes a fresh instance)."""
    return getattr(request, "param", None) or state(request.config).options.agents[0]


@pytest.fixture
def task(request: pytest.FixtureRequest, mlgym_seed: int):
    """A ready episode of each task: a fresh sandbox with the task's workspace copied in."""
    yield from _episode(request, request.param, mlgym_seed)


def _episode(request: pytest.FixtureRequest, task, seed: int):
    from .env import MLGymEnv
    from .episode import Episode
    from .task import DataMissing, TaskError

    if isinstance(task, TaskError):
        pytest.fail(str(task), pytrace=False)
    s = state(request.config)
    if s.options.size not in task.spec.sizes:
        pytest.skip(f"task {task.id} has no '{s.options.size}' size yet (sizes: {', '.join(task.spec.sizes)})")
    agent = getattr(getattr(request.node, "callspec", None), "params", {}).get("agent")
    if agent is not None and (rec := s.done.get((task.id, agent.name, seed, s.options.size))):
        s.record(request.node, rec, store=False)  # finished before the interruption: its record stands
        yield RecordedEpisode(rec)
        return
    try:
        o = s.options
        env = MLGymEnv(task, size=o.size, sandbox=o.backend, max_steps=o.max_steps, cache_dir=o.cache_dir,
                       hidden=s.hidden, gpus=o.gpus, protocol=o.protocol, sandbox_config=s.sandbox_config)
        episode = Episode.start(env, seed, session=s.id, on_step=_live_callback(request.config, agent),
                                on_finish=lambda rec: s.record(request.node, rec, env.state.trajectory))
    except DataMissing as e:
        pytest.skip(str(e))
    except TaskError as e:
        pytest.fail(str(e), pytrace=False)
    try:
        yield episode
    finally:
        episode.close()


def _live_callback(config: pytest.Config, agent):
    """The episode's ``on_step`` when live progress is on (else None: a step then costs nothing more)."""
    sink = config.stash.get(LIVE, None)
    if sink is None:
        return None
    emit = sink.direct if isinstance(sink, live.Printer) else sink
    fixed = _agent_id(agent.name) if agent is not None else None

    def on_step(episode, action: str, info: dict) -> None:
        try:
            emit(live.line(episode.task.id, fixed or _agent_id(episode.agent_name or "-"), episode.seed,
                           info.get("step", 0), episode.env.max_steps, info.get("best_feedback"), action))
        except Exception:  # progress is a display: it never ends an episode
            pass
    return on_step


class RecordedEpisode:
    """A run that ``--mlgym-resume`` found finished: ``run`` returns its record; nothing runs again."""

    def __init__(self, record):
        self.record = record

    def run(self, agent=None, name=None):
        return self.record

    def __getattr__(self, name):
        raise AttributeError(f"{self.record.task}/{self.record.agent}/s{self.record.seed} finished in session "
                             f"{self.record.session} and is not run again (--mlgym-resume); only run() is available")


def _task_fixtures(s: MLGymSession) -> types.ModuleType:
    """One fixture per task id, so ``def test_x(prisoners_dilemma): ...`` gets that task's episode."""
    module = types.ModuleType("pytest_mlgym_task_fixtures")
    for t in s.tasks:
        def fixture(request: pytest.FixtureRequest, mlgym_seed: int, _task=t):
            yield from _episode(request, _task, mlgym_seed)
        fixture.__doc__ = f"A ready episode of the task {t.id}: {t.spec.name}."
        setattr(module, t.id, pytest.fixture(name=t.id)(fixture))
    return module


# -- the end of the run: report/end.py ------------------------------------------------------------
@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The controller writes the summary of this session's records, also after Ctrl-C (a partial
    report: the runs interrupted mid-episode have no record, and ``--mlgym-resume`` runs them)."""
    s = state(session.config)
    if not s.is_controller:
        return
    from .report.end import finish

    if isinstance(printer := session.config.stash.get(LIVE, None), live.Printer):
        printer.stop()  # the last step lines come before the summary
    records = s.store.read(session=s.id)
    if exitstatus == pytest.ExitCode.INTERRUPTED:
        progress = session.config.stash[PROGRESS]
        s.interrupted = {"finished": len(records), "interrupted": len(progress.running),
                         "not_started": max(0, session.testscollected - progress.started)}
    finish(session, s, records, exitstatus)


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    s = state(config)
    if s.is_controller:
        from .report.end import terminal_summary

        terminal_summary(terminalreporter, s)
