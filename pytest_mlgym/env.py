"""``MLGymEnv``: a task as a Gymnasium environment over text actions.

``reset`` gives the task text and the tool docs; ``step(action)`` runs a tool or a shell
command in the sandbox. ``validate`` and ``submit`` score the artefact with the trusted
evaluator; the reward is the gain in the episode's best baseline-normalised score, so the
return of an episode is the best normalised score it reached (0 for nothing better than 0).
Importing this module registers every task as ``gymnasium.make("mlgym/<task-id>")``.
"""
from __future__ import annotations

import os
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import gymnasium as gym
from gymnasium import spaces

from . import sandbox as sandboxes
from .evaluation import Evaluation, evaluate
from .sandbox import SandboxConfig, isolation, truncate
from .task import Task, TaskError, default_cache_dir, default_task_roots, discover
from .tools import ToolBox, docs, refuse_interactive

STATUSES = ("running", "submitted", "invalid", "step_limit", "time_limit", "cost_limit", "error")


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
    score: float | None
    metrics: dict
    reason: str
    t: float  # seconds since the episode started

    @classmethod
    def of(cls, step: int, kind: str, ev: Evaluation, t: float) -> "ScoreEvent":
        return cls(step, kind, ev.score, ev.metrics, ev.reason, round(t, 3))


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
                 gpus: tuple[str, ...] = ()):
        self.task = task if isinstance(task, Task) else _find_task(task)
        self.size, self.backend, self.max_steps, self.gpus = size, sandbox, max_steps, tuple(gpus)
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

    # -- gymnasium API ---------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._teardown()
        spec = self.task.spec
        self.prepared = self.task.prepare(self.size, self.cache_dir)
        self._tmp = Path(tempfile.mkdtemp(prefix=f"mlgym-{self.task.id}-"))
        ws = self._tmp / "workspace"
        shutil.copytree(self.task.workspace_dir, ws, symlinks=False)
        if self.prepared.public:
            # full-size data can be many GB: hard-link it where the sandbox mounts it read-only
            linked = self.backend == "local" and isolation.available() == "bwrap"
            shutil.copytree(self.prepared.public, ws / spec.data_dir, dirs_exist_ok=True,
                            copy_function=_link_or_copy if linked else shutil.copy2)
            _read_only(ws / spec.data_dir)
        lim = spec.limits
        self.sandbox = sandboxes.create(self.backend, ws, SandboxConfig(
            memory_mb=lim.memory_mb, file_size_mb=lim.file_size_mb, disk_mb=lim.disk_mb, cpu_s=lim.episode_s * (os.cpu_count() or 1),
            output_chars=lim.output_chars, readonly=(spec.data_dir,), hidden=self.hidden, cpus=lim.cpus, pids=lim.pids, network=lim.network,
            gpus=self.gpus, env={"MLGYM_SEED": str(seed if seed is not None else 0)}))
        self.tools = ToolBox(self.sandbox, timeout=lim.step_s)
        self.state = EpisodeState()
        obs = self.intro()
        self._log("(reset)", obs)
        return obs, self._info()

    def step(self, action: str):
        if self.state.done:
            raise RuntimeError(f"the episode is over ({self.state.status}); call reset()")
        st, spec = self.state, self.task.spec
        st.step += 1
        before = st.best_normalised
        cmd = action.strip()
        if cmd == "validate":
            obs = self._score("validate")
        elif cmd == "submit":
            obs = self._score("submit")
        elif not cmd:
            obs = "Empty action: give a command (see the list of commands in the first message)."
        elif self.tools.handles(cmd):
            obs = self.tools.run(cmd)
        elif refusal := refuse_interactive(cmd):
            obs = refusal
        else:
            left = spec.limits.episode_s - (time.monotonic() - st.started)
            res = self.sandbox.exec(cmd, max(0.1, min(spec.limits.step_s, left)))
            obs = res.output if res.returncode in (0, None) else f"{res.output}\n[exit code {res.returncode}]"
        obs = truncate(obs, max(spec.limits.output_chars, 120_000) if self.tools.handles(cmd)
                       else spec.limits.output_chars)
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
        spec, lim = self.task.spec, self.task.spec.limits
        m = spec.metric
        return (f"# Task: {spec.name}\n\n{spec.description.strip()}\n\n"
                f"Metric: {m.name} ({'higher' if m.direction == 'max' else 'lower'} is better). "
                f"Baseline score: {self.size_spec.baseline:g}. Beat it.\n"
                f"Your workspace is {self.sandbox.workdir}. You have {self.max_steps} steps and "
                f"{lim.episode_s / 60:g} minutes.\n\n{docs(spec.artefact, lim.step_s)}")

    def finish(self, status: str, reason: str = "") -> str:
        """End the episode (step/time/cost limit, agent error) scoring what is there (autosubmission)."""
        if self.state.done:
            return ""
        obs = self._score("autosubmit")
        self.state.status = status if status != "submitted" else self.state.status
        self.state.reason = "; ".join(r for r in (reason, self.state.reason) if r)
        return f"[episode ended: {status}{': ' + reason if reason else ''}]\n{obs}"

    def _score(self, kind: str) -> str:
        st, m = self.state, self.task.spec.metric
        ev = evaluate(self.task, self.size, self.sandbox, self.prepared, hidden=self.hidden)
        st.scores.append(ScoreEvent.of(st.step, kind, ev, time.monotonic() - st.started))
        base = self.size_spec.baseline
        if ev.valid:
            st.best_normalised = max(st.best_normalised, normalise(ev.score, base, m.direction))
            verdict = "better than" if m.better(ev.score, base) else "not better than"
            text = f"{m.name} = {ev.score:.6g} ({verdict} the baseline {base:g}); all metrics: {ev.metrics}"
        else:
            text = f"the artefact is invalid: {ev.reason}"
        if kind == "validate":
            return f"Validation: {text}"
        st.status = "submitted" if ev.valid else "invalid"
        st.reason = "" if ev.valid else ev.reason
        return f"{'Submission' if kind == 'submit' else 'Autosubmission'}: {text}"

    def _info(self) -> dict:
        st, m = self.state, self.task.spec.metric
        valid = [s.score for s in st.scores if s.score is not None]
        final = st.scores[-1] if st.scores and st.scores[-1].kind != "validate" else None
        return {"task": self.task.id, "step": st.step, "status": st.status, "reason": st.reason,
                "best_attempt": m.best(valid), "best_submission": final.score if final else None,
                "isolation": getattr(self.sandbox, "isolation", None), "scores": list(st.scores),
                "host": getattr(self.sandbox, "host", None)}

    def _log(self, action: str, obs: str, reward: float = 0.0) -> None:
        self._last_obs = obs
        self.state.trajectory.append({"step": self.state.step, "action": action, "observation": obs,
                                      "reward": reward, "t": round(time.monotonic() - self.state.started, 3)})

    def _teardown(self) -> None:
        if self.sandbox is not None:
            self.sandbox.close()
            self.sandbox = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another filesystem
        shutil.copy2(src, dst)


def _read_only(root: Path) -> None:
    """Belt and braces for backends without read-only mounts (root ignores it, bwrap does not)."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            p = Path(dirpath, name)
            p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


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
