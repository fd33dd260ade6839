"""``MLGymEnv``: a task as a Gymnasium environment over text actions.

``reset`` gives the task text and the tool docs; ``step(action)`` runs a tool or a shell
command in the sandbox. ``validate`` and ``submit`` score the artefact with the trusted
evaluator; the reward is the gain in the episode's best baseline-normalised score, so the
return of an episode is the best normalised score it reached (0 for nothing better than 0).
Importing this module registers every task as ``gymnasium.make("mlgym/<task-id>")``.

The trajectory (``state.trajectory``, saved by the plugin) references workspace files by
content, never copies them: each ``validate``/``submit``/autosubmission adds to its step's entry
the sha256 and size of the scored artefact and of the workspace files changed since the last
score (see :class:`WorkspaceFiles`); ordinary commands cost nothing more.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import gymnasium as gym
from gymnasium import spaces

from . import sandbox as sandboxes
from .evaluation import Evaluation, evaluate
from .fingerprint import WorkspaceFiles, _remote_artefact, tree_sha256  # noqa: F401 - tree_sha256: re-exported
from .sandbox import SandboxConfig, truncate
from .task import Task, TaskError, default_cache_dir, default_task_roots, discover, read_only
from .tools import ToolBox, docs, refuse_interactive

STATUSES = ("running", "submitted", "invalid", "step_limit", "time_limit", "cost_limit", "error")
# sealed (the default): validate shows the dev split; test scores are recorded and shown to no one
# in the episode; best attempt = the test score of the attempt with the best dev score.
# mlgym: MLGym's own protocol (validate shows the test score; best attempt = the best test score,
# selected on test feedback), for comparison with published numbers.
PROTOCOLS = ("sealed", "mlgym")


class AnyText(spaces.Text):
    """Text of any characters (Gymnasium's ``Text`` restricts the charset)."""

    def __init__(self, max_length: int = 1 << 20):
        super().__init__(max_length=max_length, min_length=0)

    def contains(self, x) -> bool:
        return isinstance(x, str) and len(x) <= self.max_length


@dataclass
class ScoreEvent:
    step: int
    kind: str  # validate | submit | autosubmit
    score: float | None  # the test split's (sealed: never shown during the episode)
    metrics: dict
    reason: str
    t: float  # seconds since the episode started
    dev_score: float | None = None  # the dev split's (what validate shows under the sealed protocol)
    dev_metrics: dict = field(default_factory=dict)

    @classmethod
    def of(cls, step: int, kind: str, ev: Evaluation, t: float) -> "ScoreEvent":
        return cls(step, kind, ev.score, ev.metrics, ev.reason, round(t, 3), ev.dev_score, ev.dev_metrics)


@dataclass
class EpisodeState:
    started: float = field(default_factory=time.monotonic)
    step: int = 0
    status: str = "running"
    reason: str = ""
    scores: list[ScoreEvent] = field(default_factory=list)
    best_normalised: float = 0.0
    trajectory: list[dict] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.status != "running"


def normalise(score: float, baseline: float, direction: str) -> float:
    """1.0 at the baseline, linear in the score, higher is better, for any sign of baseline."""
    scale = abs(baseline) or 1.0
    gain = (score - baseline) if direction == "max" else (baseline - score)
    return 1.0 + gain / scale


class MLGymEnv(gym.Env):
    metadata = {"render_modes": ["ansi"]}

    def __init__(self, task: Task | str, *, size: str = "lite", sandbox: str = "local", max_steps: int = 50,
                 cache_dir: Path | None = None, hidden: tuple[Path, ...] = (), render_mode: str | None = None,
                 gpus: tuple[str, ...] = (), protocol: str = "sealed", sandbox_config: SandboxConfig | None = None):
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}")
        self.protocol = protocol
        self.task = task if isinstance(task, Task) else _find_task(task)
        self.size, self.backend, self.max_steps, self.gpus = size, sandbox, max_steps, tuple(gpus)
        self.sandbox_config = sandbox_config or SandboxConfig()  # the session's backend options; limits: the task's
        self.size_spec = self.task.size(size)
        self.cache_dir = cache_dir or default_cache_dir()
        # never visible to the agent: every task folder we know of and the prepared-data cache
        self.hidden = tuple({*hidden, self.task.path.parent, self.cache_dir})
        self.render_mode = render_mode
        self.observation_space = AnyText()
        self.action_space = AnyText()
        self.sandbox = None
        self.state = EpisodeState(status="closed")
        self._tmp: Path | None = None
        self._last_obs = ""
        self._files: WorkspaceFiles | None = None
        self._stepping = False
        self._scored: list[dict] = []  # what the current step scored, for its trajectory entry

    # -- gymnasium API ---------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._teardown()
        spec = self.task.spec
        self.prepared = self.task.prepare(self.size, self.cache_dir)
        self._tmp = Path(tempfile.mkdtemp(prefix=f"mlgym-{self.task.id}-"))
        ws = self._tmp / "workspace"
        self.task.copy_workspace(ws)
        if self.prepared.public:
            # full-size data can be many GB: hard-link it where the sandbox mounts it read-only
            linked = sandboxes.backend(self.backend).links_readonly_data()
            shutil.copytree(self.prepared.public, ws / spec.data_dir, dirs_exist_ok=True,
                            copy_function=_link_or_copy if linked else shutil.copy2)
            read_only(ws / spec.data_dir)
        lim = spec.limits
        self.sandbox = sandboxes.create(self.backend, ws, dataclasses.replace(
            self.sandbox_config, memory_mb=lim.memory_mb, file_size_mb=lim.file_size_mb, disk_mb=lim.disk_mb,
            cpu_s=lim.episode_s * (os.cpu_count() or 1), output_chars=lim.output_chars, readonly=(spec.data_dir,),
            hidden=(*self.hidden, *self.task.masked_paths()), cpus=lim.cpus, pids=lim.pids, network=lim.network,
            gpus=self.gpus, env={"MLGYM_SEED": str(seed if seed is not None else 0)}))
        self.tools = ToolBox(self.sandbox, timeout=lim.step_s)
        self.state = EpisodeState()
        self._files = WorkspaceFiles(ws, skip=(spec.data_dir,), artefact=spec.artefact)
        self._scored = []
        obs = self.intro()
        self._log("(reset)", obs)
        # what an exporter needs to rebuild the agent's view: the task text whole (the saved
        # observation is cut to its head and tail) and what the tool docs are generated from
        self.state.trajectory[-1].update(task_text=self.task_text(), task=self.task_meta())
        return obs, self._info()

    def step(self, action: str):
        if self.state.done:
            raise RuntimeError(f"the episode is over ({self.state.status}); call reset()")
        self._stepping = True
        try:
            return self._step(action)
        finally:
            self._stepping = False

    def _step(self, action: str):
        st, spec = self.state, self.task.spec
        st.step += 1
        before = st.best_normalised
        cmd = action.strip()
        tool = self.tools.handles(cmd)
        if cmd == "validate":
            obs = self._score("validate")
        elif cmd == "submit":
            obs = self._score("submit")
        elif not cmd:
            obs = "Empty action: give a command (see the list of commands in the first message)."
        elif tool:
            obs = self.tools.run(cmd)
        elif refusal := refuse_interactive(cmd):
            obs = refusal
        else:
            left = spec.limits.episode_s - (time.monotonic() - st.started)
            res = self.sandbox.exec(cmd, max(0.1, min(spec.limits.step_s, left)))
            obs = res.output if res.returncode in (0, None) else f"{res.output}\n[exit code {res.returncode}]"
        obs = truncate(obs, max(spec.limits.output_chars, 120_000) if tool else spec.limits.output_chars)
        if not st.done:
            if time.monotonic() - st.started > spec.limits.episode_s:
                obs += "\n" + self.finish("time_limit", f"episode time limit of {spec.limits.episode_s:g} s reached")
            elif st.step >= self.max_steps:
                obs += "\n" + self.finish("step_limit", f"step limit of {self.max_steps} reached")
        reward = st.best_normalised - before
        self._log(action, obs, reward)
        return obs, reward, st.status in ("submitted", "invalid", "error", "cost_limit"), \
            st.status in ("step_limit", "time_limit"), self._info()

    def render(self):
        return self._last_obs if self.render_mode == "ansi" else None

    def close(self):
        self._teardown()
        super().close()

    # -- episode logic ---------------------------------------------------------------------------
    def intro(self) -> str:
        spec = self.task.spec
        return f"{self.task_text()}\n\n{docs(spec.artefact, spec.limits.step_s)}"

    def task_text(self) -> str:
        """The first observation without the tool docs."""
        spec, lim = self.task.spec, self.task.spec.limits
        m = spec.metric
        return (f"# Task: {spec.name}\n\n{spec.description.strip()}\n\n"
                f"Metric: {m.name} ({'higher' if m.direction == 'max' else 'lower'} is better). "
                f"Baseline score: {self.feedback_baseline:g}{self._split_note()}. Beat it.\n"
                f"Your workspace is {self.sandbox.workdir}. You have {self.max_steps} steps and "
                f"{lim.episode_s / 60:g} minutes.")

    def task_meta(self) -> dict:
        spec = self.task.spec
        return {"id": spec.id, "name": spec.name, "size": self.size, "metric": spec.metric.name,
                "direction": spec.metric.direction, "baseline": self.size_spec.baseline, "artefact": spec.artefact,
                "step_s": spec.limits.step_s, "episode_s": spec.limits.episode_s, "max_steps": self.max_steps}

    @property
    def feedback_baseline(self) -> float:
        """The baseline's score on the split ``validate`` shows."""
        dev = self.size_spec.dev_baseline
        return dev if self.protocol == "sealed" and dev is not None else self.size_spec.baseline

    def _split_note(self) -> str:
        if self.protocol == "mlgym":
            return " (validate scores the test set, as in MLGym)"
        return (" on the dev split, which validate scores; your final artefact is scored on a hidden test "
                f"split, where the baseline scores {self.size_spec.baseline:g}")

    def _feedback(self, ev: Evaluation) -> tuple[float | None, dict, str]:
        """What the agent may see of an evaluation: the dev split (sealed) or the test split (mlgym)."""
        if self.protocol == "mlgym":
            return ev.score, ev.metrics, "test"
        return ev.dev_score, ev.dev_metrics, "dev"

    def finish(self, status: str, reason: str = "") -> str:
        """End the episode (step/time/cost limit, agent error) scoring what is there (autosubmission)."""
        if self.state.done:
            return ""
        try:
            obs = self._score("autosubmit")
        except Exception as e:  # the harness could not score: its failure, recorded, never the agent's
            status, why = "error", f"harness error: the final artefact could not be scored: {_one_line(e)}"
            reason = "; ".join(r for r in (reason, why) if r)
            obs = why
        if not self._stepping and self._scored and self.state.trajectory:  # ended between steps (agent
            self.state.trajectory[-1].setdefault("scored", []).extend(self._scored)  # error, cost limit)
            self._scored = []
        self.state.status = status if status != "submitted" else self.state.status
        self.state.reason = "; ".join(r for r in (reason, self.state.reason) if r)
        return f"[episode ended: {status}{': ' + reason if reason else ''}]\n{obs}"

    def _score(self, kind: str) -> str:
        st, m = self.state, self.task.spec.metric
        files = self._fingerprint()
        ev = evaluate(self.task, self.size, self.sandbox, self.prepared, hidden=self.hidden,
                      code_hidden=self.task.masked_paths())
        st.scores.append(ScoreEvent.of(st.step, kind, ev, time.monotonic() - st.started))
        shown, metrics, split = self._feedback(ev)
        # the trajectory is the agent's view: the split it may see, never the sealed one
        self._scored.append({"kind": kind, "step": st.step, "split": split, "score": shown,
                             **({"reason": ev.reason} if not ev.valid else {}), **files})
        base = self.feedback_baseline
        if not ev.valid:
            text = f"the artefact is invalid: {ev.reason}"
        elif shown is None:
            text = "the artefact is valid; this task has no dev split, so its score stays sealed until the episode ends"
        else:
            st.best_normalised = max(st.best_normalised, normalise(shown, base, m.direction))
            verdict = "better than" if m.better(shown, base) else "not better than"
            text = f"{m.name} = {shown:.6g} ({verdict} the baseline {base:g}, {split} split); all metrics: {metrics}"
        if kind == "validate":
            return f"Validation: {text}"
        st.status = "submitted" if ev.valid else "invalid"
        st.reason = "" if ev.valid else ev.reason
        sealed = "; its test score is recorded, sealed until the episode ends" if ev.valid and split == "dev" else ""
        return f"{'Submission' if kind == 'submit' else 'Autosubmission'}: {text}{sealed}"

    def _info(self) -> dict:
        """What the agent and an RL trainer may see: during a sealed episode, no test score."""
        st = self.state
        feedback = [{"step": e.step, "kind": e.kind, "score": self._feedback(e)[0] if e.score is not None else None,
                     "reason": e.reason} for e in st.scores]
        shown = [f["score"] for f in feedback if f["score"] is not None]
        info = {"task": self.task.id, "step": st.step, "status": st.status, "reason": st.reason,
                "protocol": self.protocol, "feedback": feedback, "best_feedback": self.task.spec.metric.best(shown),
                "isolation": self.sandbox.isolation if self.sandbox else None,
                "host": self.sandbox.host if self.sandbox else None}
        if st.done or self.protocol == "mlgym":  # the episode is over (or nothing is sealed)
            info.update(self.results())
        return info

    def results(self) -> dict:
        """The three score kinds of the episode so far, all on the test split (harness-side only):
        best submission (the final scored artefact), best attempt (sealed: the attempt with the best
        dev score; mlgym: the best test score) and the oracle best attempt (the best test score:
        selected on test feedback, MLGym's "best attempt")."""
        st, m = self.state, self.task.spec.metric
        valid = [e for e in st.scores if e.score is not None]
        final = st.scores[-1] if st.scores and st.scores[-1].kind != "validate" else None
        oracle = m.best([e.score for e in valid])
        if self.protocol == "mlgym":
            attempt = oracle
        else:
            with_dev = [e for e in valid if e.dev_score is not None]
            if with_dev:  # the best dev score; of equals, the latest
                best_dev = m.best([e.dev_score for e in with_dev])
                attempt = [e for e in with_dev if e.dev_score == best_dev][-1].score
            else:  # no feedback to select on: the final artefact (else the last valid one)
                attempt = final.score if final and final.score is not None else (valid[-1].score if valid else None)
        return {"best_attempt": attempt, "best_submission": final.score if final else None,
                "oracle_best_attempt": oracle, "scores": list(st.scores)}

    def _fingerprint(self) -> dict:
        """The artefact's and the changed files' hashes, taken just before scoring (never fails the score)."""
        try:
            if not self.sandbox.files_local:  # the workspace is not on this machine: the artefact only
                return {"artefact": _remote_artefact(self.sandbox, self.task.spec.artefact)}
            return self._files.scan() if self._files else {}
        except Exception as e:  # noqa: BLE001 - bookkeeping must never change an episode's outcome
            return {"artefact": {"path": self.task.spec.artefact, "sha256": None, "size": None,
                                 "error": f"{type(e).__name__}: {e}"[:300]}}

    def _log(self, action: str, obs: str, reward: float = 0.0) -> None:
        self._last_obs = obs
        entry = {"step": self.state.step, "action": action, "observation": obs,
                 "reward": reward, "t": round(time.monotonic() - self.state.started, 3)}
        if self._scored:
            entry["scored"], self._scored = self._scored, []
        self.state.trajectory.append(entry)

    def _teardown(self) -> None:
        if self.sandbox is not None:
            self.sandbox.close()
            self.sandbox = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        self._files = None


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another filesystem
        shutil.copy2(src, dst)


def _find_task(task_id: str) -> Task:
    tasks, errors = discover(default_task_roots())
    for t in tasks:
        if t.id == task_id:
            return t
    if task_id in errors:
        raise errors[task_id]
    raise TaskError(f"unknown task '{task_id}'; known: {', '.join(sorted(t.id for t in tasks)) or 'none'}")


def register_all() -> list[str]:
    """Register ``mlgym/<id>`` for every task found in the default task folders."""
    tasks, _ = discover(default_task_roots())
    for t in tasks:
        env_id = f"mlgym/{t.id}"
        if env_id not in gym.registry:
            gym.register(env_id, entry_point="pytest_mlgym.env:MLGymEnv", kwargs={"task": t.id},
                         disable_env_checker=True)
    return [f"mlgym/{t.id}" for t in tasks]


register_all()


def _one_line(e: BaseException) -> str:
    return f"{type(e).__name__}: {' '.join(str(e).split())}"[:300]
