"""``MLGymEnv``: a task as a Gymnasium environment over text actions.

``reset`` gives the task text and the tool docs; ``step(action)`` runs a tool or a shell
command in the sandbox. ``validate`` and ``submit`` score the artefact with the trusted
evaluator; the reward is the gain in the episode's best normalised score on the split validate
shows (:mod:`pytest_mlgym.anchors`: 0 = the baseline, 1 = the reference solution, from task.yaml's
``dev_baseline``/``dev_reference``; mlgym protocol: ``baseline``/``reference``), so the return of
an episode is the best normalised score it reached, floored at 0: ~0 for a baseline-level episode,
~1 for a reference-level one. A size that declares no reference gives reward 0 (with a warning).

The env is the Gymnasium API and the episode's logic; its collaborators, one module each:
the limits (:mod:`.limits`), the episode's state and score bookkeeping (:mod:`.state`), the
trajectory (:mod:`.trajectory`, saved by the plugin) with the scores' workspace fingerprints
(:class:`pytest_mlgym.fingerprint.ScoreFingerprints`), and the registration (:mod:`.registration`).
"""
from __future__ import annotations

import dataclasses
import os
import posixpath
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Literal

import gymnasium as gym

from ..errors import one_line
from .. import sandbox as sandboxes
from ..evaluation import Evaluation, evaluate
from ..fingerprint import ScoreFingerprints
from ..observation import CommandResult, EpisodeEnded, Intro, LimitsLeft, Observation, Scored, say
from ..results import PROTOCOLS, EventKind, Protocol, Status
from ..sandbox import Sandbox, SandboxConfig, truncate
from ..task import Task, default_cache_dir, read_only
from ..tools import ToolBox, docs, refuse_interactive
from .facts import SandboxFacts, facts, probe_key
from .limits import EpisodeLimits, ends
from .registration import find_task
from .spaces import AnyText
from .state import EpisodeState, ScoreEvent


class MLGymEnv(gym.Env):
    metadata = {"render_modes": ["ansi"]}

    def __init__(self, task: Task | str, *, size: str = "lite", sandbox: str = "local", max_steps: int = 50,
                 cache_dir: Path | None = None, hidden: tuple[Path, ...] = (), render_mode: str | None = None,
                 gpus: tuple[str, ...] = (), protocol: str = "sealed", sandbox_config: SandboxConfig | None = None):
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}")
        self.protocol: Protocol = "mlgym" if protocol == "mlgym" else "sealed"
        self.task = task if isinstance(task, Task) else find_task(task)
        self.size, self.backend, self.max_steps, self.gpus = size, sandbox, max_steps, tuple(gpus)
        self.sandbox_config = sandbox_config or SandboxConfig()  # the session's backend options; limits: the task's
        self.size_spec = self.task.size(size)
        # the reward's scale: the anchors of the split validate shows (None: reward 0)
        self.reward_anchors = self.size_spec.anchors(self.task.spec.metric.direction,
                                                     "dev" if self.protocol == "sealed" else "test")
        self.cache_dir = cache_dir or default_cache_dir()
        # never visible to the agent: every task folder we know of and the prepared-data cache
        self.hidden = tuple({*hidden, self.task.path.parent, self.cache_dir})
        self.render_mode = render_mode
        self.observation_space = AnyText()
        self.action_space = AnyText()
        self.sandbox: Sandbox | None = None
        self.cpu_at_start: tuple[float, str] | None = None
        self.sandbox_used = self.sandbox_config  # the config of the episode's sandbox (the task's limits in it)
        self.state = EpisodeState(status="closed")
        self.limits = EpisodeLimits(max_steps, self.task.spec.limits.episode_s, self.task.spec.limits.step_s)
        self._tmp: Path | None = None
        self._fingerprints: ScoreFingerprints | None = None
        self._stepping = False

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
        self.sandbox_used = config = dataclasses.replace(
            self.sandbox_config, memory_mb=lim.memory_mb, file_size_mb=lim.file_size_mb, disk_mb=lim.disk_mb,
            cpu_s=lim.episode_s * (os.cpu_count() or 1), output_chars=lim.output_chars, readonly=(spec.data_dir,),
            hidden=(*self.hidden, *self.task.masked_paths()), cpus=lim.cpus, pids=lim.pids, network=lim.network,
            gpus=self.gpus, env={"MLGYM_SEED": str(seed if seed is not None else 0)})
        self.sandbox = sb = sandboxes.create(self.backend, ws, config)
        self.tools = ToolBox(sb, timeout=lim.step_s)
        self.facts()  # probed (once per backend) before the episode's clock starts
        self.cpu_at_start = sb.cpu_usage()  # the probe's share, not the agent's: subtracted from its core-seconds
        self.state = EpisodeState()
        self.limits = EpisodeLimits(self.max_steps, lim.episode_s, lim.step_s)
        self._fingerprints = ScoreFingerprints(sb, ws, skip=(spec.data_dir,), artefact=spec.artefact)
        obs = self.intro()
        entry = self._add_step("(reset)", obs)
        # what an exporter needs to rebuild the agent's view: the task text whole (the saved
        # observation is cut to its head and tail) and what the tool docs are generated from
        entry.update(task_text=self.task_text(), task=self.task_meta())
        return obs, self.info()

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
            obs = Observation(say("empty_action"))
        elif tool:
            obs = self.tools.run(cmd)
        elif refusal := refuse_interactive(cmd):
            obs = Observation(refusal)
        else:
            res = self._open().exec(cmd, self.limits.command_timeout(st.elapsed))
            output = res.output if res.output.strip() else say("no_output")
            text = output if res.returncode in (0, None) else say("exit_code", output=output, code=res.returncode)
            obs = Observation(text, (CommandResult(res.returncode, res.timed_out),))
        obs = obs.retext(truncate(obs, max(spec.limits.output_chars, 120_000) if tool else spec.limits.output_chars))
        if not st.done and (limit := self.limits.reached(st.step, st.elapsed)):
            obs += "\n" + self.finish(*limit)
        where = {"open_file": self.tools.file, "cwd": self._open().cwd}  # what the llm prompt shows
        obs = obs.with_events(LimitsLeft(max(0, self.limits.max_steps - st.step),
                                         round(max(0.0, self.limits.episode_s - st.elapsed), 3), **where))
        reward = st.best_normalised - before
        self._add_step(action, obs, reward).update(where)
        return obs, reward, *ends(st.status), self.info()

    def render(self):
        return self.state.trajectory.last_observation if self.render_mode == "ansi" else None

    def close(self):
        self._teardown()
        super().close()

    # -- episode logic ---------------------------------------------------------------------------
    def intro(self) -> Observation:
        spec, task = self.task.spec, self.task_text()
        commands = docs(spec.artefact, spec.limits.step_s)
        sandbox = dataclasses.asdict(self.facts())
        return Observation(say("intro", task=task, commands=commands),
                           (Intro(task, commands, sandbox), LimitsLeft(self.max_steps, spec.limits.episode_s)))

    def facts(self) -> SandboxFacts:
        """The sandbox as the first observation describes it: probed inside it once per backend
        configuration (cached), the rest from its config."""
        return facts(self._open(), probe_key(self.backend, self.sandbox_config), self.sandbox_used)

    def task_text(self) -> str:
        """The first observation without the tool docs."""
        spec, lim = self.task.spec, self.task.spec.limits
        m = spec.metric
        return (f"# Task: {spec.name}\n\n{spec.description.strip()}\n\n"
                f"Metric: {m.name} ({m.word} is better). "
                f"Baseline score: {self.feedback_baseline:g}{self._split_note()}. Beat it.\n"
                f"Your workspace is the current folder, {self.workspace_name}. "
                f"{say('budget', steps=self.max_steps, minutes=lim.episode_s / 60)}\n\n{self.facts().text()}")

    @property
    def workspace_name(self) -> str:
        """The workspace as the observations name it: the folder's name, never its path, which is a
        fresh temporary folder each reset (a seed gives the same observations; ``pwd`` shows it)."""
        return posixpath.basename(posixpath.normpath(self._open().workdir))

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

    def _feedback(self, ev: Evaluation | ScoreEvent) -> tuple[float | None, dict, Literal["dev", "test"]]:
        """What the agent may see of an evaluation: the dev split (sealed) or the test split (mlgym)."""
        if self.protocol == "mlgym":
            return ev.score, ev.metrics, "test"
        return ev.dev_score, ev.dev_metrics, "dev"

    def finish(self, status: Status, reason: str = "") -> Observation:
        """End the episode (step/time/cost limit, agent error) scoring what is there (autosubmission)."""
        if self.state.done:
            return Observation()
        try:
            obs = self._score("autosubmit")
        except Exception as e:  # the harness could not score: its failure, recorded, never the agent's
            status, why = "error", say("unscorable", error=one_line(e, 300))
            reason = "; ".join(r for r in (reason, why) if r)
            obs = Observation(why)
        if not self._stepping:  # ended between steps (agent error, cost limit): into the last entry
            self.state.trajectory.flush()
        self.state.status = status if status != "submitted" else self.state.status
        self.state.reason = "; ".join(r for r in (reason, self.state.reason) if r)
        ended = say("ended_because", status=status, reason=reason, observation=obs) if reason else \
            say("ended", status=status, observation=obs)
        return Observation(ended, (*obs.events, EpisodeEnded(status, reason)))

    def _score(self, kind: EventKind) -> Observation:
        st, m = self.state, self.task.spec.metric
        files = self._fingerprints.take() if self._fingerprints else {}
        ev = evaluate(self.task, self.size, self._open(), self.prepared, hidden=self.hidden,
                      code_hidden=self.task.masked_paths())
        st.scores.append(ScoreEvent.of(st.step, kind, ev, st.elapsed))
        shown, metrics, split = self._feedback(ev)
        # the trajectory is the agent's view: the split it may see, never the sealed one
        st.trajectory.add_score({"kind": kind, "step": st.step, "split": split, "score": shown,
                             **({"reason": ev.reason} if not ev.valid else {}), **files})
        base = self.feedback_baseline
        better = None if shown is None else m.better(shown, base)
        if not ev.valid:
            text = say("invalid", reason=ev.reason)
        elif shown is None:
            text = say("no_dev_split")
        else:
            if self.reward_anchors is not None:
                st.best_normalised = max(st.best_normalised, self.reward_anchors.score(shown) or 0.0)
            elif better and not st.unrewarded:  # once per episode, when it matters: a gain that earns nothing
                st.unrewarded = True
                anchor = "dev_reference" if self.protocol == "sealed" else "reference"
                warnings.warn(f"{self.task.id} ({self.size}) declares no {anchor}: no reward for beating the baseline "
                              f"(python -m pytest_mlgym measure {self.task.path} --reference)", stacklevel=2)
            verdict = say("verdict_better" if better else "verdict_not_better")
            text = say("score", metric=m.name, score=shown, verdict=verdict, baseline=base, split=split,
                       metrics=metrics)
        # what the text shows, typed: the shown split only (sealed: never the test score)
        event = Scored(kind, split, m.name, shown, ev.valid, ev.reason if not ev.valid else "", base, better,
                       dict(metrics) if shown is not None else {})
        if kind == "validate":
            return Observation(say("validation", result=text), (event,))
        st.status = "submitted" if ev.valid else "invalid"
        st.reason = "" if ev.valid else ev.reason
        sealed = say("sealed_note") if ev.valid and split == "dev" else ""
        return Observation(say("submission" if kind == "submit" else "autosubmission", result=text, sealed=sealed),
                           (event,))

    def info(self) -> dict:
        """What the agent and an RL trainer may see: during a sealed episode, no test score."""
        st = self.state
        feedback = st.feedback(lambda e: self._feedback(e)[0])
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
        see :meth:`EpisodeState.results`."""
        return self.state.results(self.task.spec.metric, self.protocol)

    def _add_step(self, action: str, obs: str, reward: float = 0.0) -> dict:
        return self.state.trajectory.add_step(self.state.step, action, obs, reward, self.state.elapsed)

    def _open(self) -> Sandbox:
        if self.sandbox is None:
            raise RuntimeError("no episode is open: call reset()")
        return self.sandbox

    def _teardown(self) -> None:
        if self.sandbox is not None:
            self.sandbox.close()
            self.sandbox = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        self._fingerprints = None


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another filesystem
        shutil.copy2(src, dst)
