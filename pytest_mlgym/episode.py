"""An episode: a reset env ready for an agent, and the loop that runs one agent in it.

The pytest fixtures yield an :class:`Episode` (the ``task`` fixture and the per-task fixtures such
as ``prisoners_dilemma``: a test asks for a task and gets a ready episode of it); the Gymnasium
env underneath is the same one ``gymnasium.make("mlgym/<id>")`` gives, so tests, benchmarks and RL
share one code path.

Words: a *run record* (:class:`pytest_mlgym.results.RunRecord`) is the result of one run, made by
:meth:`Episode.run_record` and handed to ``on_finish`` (the plugin stores it); the *trajectory*
(``env.state.trajectory``) is the step-by-step view the agent had, saved beside the record.
"""
from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Callable

from . import compute
from .errors import one_line
from .agents import Agent, AgentSpec, EpisodeEnd, TaskInfo
from .env import MLGymEnv
from .results import RunRecord, Score, judge


@dataclass
class Episode:
    env: MLGymEnv
    seed: int
    session: str = "interactive"
    on_finish: Callable[[RunRecord], None] | None = None  # called with the run record when run() ends
    on_step: Callable[["Episode", str, dict], None] | None = None  # live progress: (episode, action, info)
    observation: str = ""
    info: dict = field(default_factory=dict)
    agent_name: str = ""  # set by run(); live progress lines show it

    @classmethod
    def start(cls, env: MLGymEnv, seed: int, **kw) -> "Episode":
        ep = cls(env, seed, **kw)
        ep.observation, ep.info = env.reset(seed=seed)
        return ep

    @property
    def task(self):
        return self.env.task

    @property
    def sandbox(self):
        return self.env.sandbox

    @property
    def workdir(self) -> str:
        if (sb := self.env.sandbox) is None:
            raise RuntimeError("the episode is closed")
        return sb.workdir

    def __repr__(self) -> str:
        return f"<Episode {self.task.id} seed={self.seed} step={self.env.state.step} {self.env.state.status}>"

    def step(self, action: str):
        obs, reward, terminated, truncated, self.info = self.env.step(action)
        self.observation = obs
        if self.on_step is not None:  # off: this test is all a step costs
            self.on_step(self, action, self.info)
        return obs, reward, terminated, truncated, self.info

    def run(self, agent: Agent | AgentSpec, name: str | None = None) -> RunRecord:
        """Run ``agent`` until it submits or a limit ends the episode; return its run record.

        An agent that raises ends the episode with status ``error`` and the exception in one
        line; whatever it had already scored is kept, and its artefact is still scored.
        """
        spec = agent if isinstance(agent, AgentSpec) else None
        name = name or (spec.name if spec else type(agent).__name__)
        policy = spec.policy if spec else getattr(agent, "policy", name)
        self.agent_name = name
        t0 = time.monotonic()
        live: Agent | None = None  # the agent playing: the record reads its cost and usage
        try:
            live = agent.make() if isinstance(agent, AgentSpec) else agent
            live.reset(self.task_info())
            while not self.env.state.done:
                action = live.act(self.observation)
                logged = len(self.env.state.trajectory)  # the index of the entry this step logs
                try:
                    self.step(action)
                except Exception as e:  # the harness failed, not the agent: still keep the record
                    self.env.finish("error", f"harness error on step {self.env.state.step}: {one_line(e, 500)}")
                if thought := getattr(live, "thought", None):
                    self.env.state.trajectory.annotate(logged, thought=str(thought))
        except EpisodeEnd as e:  # the agent ran out of money or could not go on: score what is there
            self.env.finish(e.status, e.reason)
        except Exception as e:  # an agent crash is a result, not a harness failure
            where = traceback.extract_tb(e.__traceback__)[-1]
            self.env.finish("error", f"agent crashed: {one_line(e, 500)} "
                                     f"({where.filename.rsplit('/', 1)[-1]}:{where.lineno})")
        record = self.run_record(name, policy, time.monotonic() - t0, live)
        if self.on_finish:
            self.on_finish(record)
        return record

    def task_info(self) -> TaskInfo:
        spec = self.task.spec
        return TaskInfo(id=spec.id, name=spec.name, description=spec.description, metric=spec.metric.name,
                        direction=spec.metric.direction, baseline=self.env.feedback_baseline,
                        artefact=spec.artefact, baseline_command=spec.baseline_command,
                        max_steps=self.env.max_steps, seed=self.seed,
                        knobs=tuple(k.model_dump() for k in spec.knobs), step_s=spec.limits.step_s,
                        episode_s=spec.limits.episode_s)

    def run_record(self, name: str, policy: str, wall_s: float, agent=None) -> RunRecord:
        """The run's result as it stands: scores, status, cost, sandbox (a :class:`RunRecord`)."""
        env, spec, info, res = self.env, self.task.spec, self.env.info(), self.env.results()
        rec = RunRecord(
            session=self.session, task=spec.id, size=env.size, agent=name, policy=policy, seed=self.seed,
            metric=spec.metric.name, direction=spec.metric.direction, baseline=env.size_spec.baseline,
            tolerance=env.size_spec.tolerance, scores=[Score(**vars(s)) for s in env.state.scores],
            best_attempt=res["best_attempt"], best_submission=res["best_submission"],
            oracle_best_attempt=res["oracle_best_attempt"], protocol=env.protocol,
            published=env.size_spec.published, reference=env.size_spec.reference,
            normalise=env.size_spec.normalise, optimum=env.size_spec.optimum,
            status=env.state.status, reason=env.state.reason, steps=env.state.step, wall_s=round(wall_s, 3),
            infra=env.state.reason.split(":", 1)[0] if env.state.status == "infra_error" else None,
            cost_usd=float(getattr(agent, "cost_usd", 0.0) or 0.0), tokens=int(getattr(agent, "tokens", 0) or 0),
            usage=list(getattr(agent, "usage", None) or []),
            sandbox=env.backend, isolation=info["isolation"], sandbox_host=info["host"], finished_at=time.time(),
            compute=compute.of_episode(env.sandbox, env.gpus, wall_s, env.cpu_at_start),
        )
        rec.normalised_best_submission = rec.normalised(rec.best_submission)
        rec.normalised_best_attempt = rec.normalised(rec.best_attempt)
        rec.passed, rec.verdict = judge(rec)
        return rec

    record = run_record  # the former name

    def close(self) -> None:
        self.env.close()
