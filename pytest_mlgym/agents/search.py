"""``search``: a research agent that needs no model.

It reads the knobs the task declares (task.yaml ``knobs``), opens their file and changes them
with the same ``open``/``edit`` tools an LLM uses, runs the training command in the sandbox,
calls ``validate`` and keeps the best configuration's artefact. No shortcut goes around the env.

Strategy. Trial 0 is the shipped configuration: it measures the baseline and what one run
costs. Then, on a task with a fidelity knob (the training budget: epochs, steps), successive
halving: the shipped configuration and seeded samples (around it and across the knobs' ranges)
train on a small budget, the best 1/eta go on to a larger one, up to ``extend`` x the baseline's
budget at the top rung, where the shipped configuration also trains as a control (the safest
bet: the baseline's own settings, trained longer). Without a fidelity knob: seeded random search,
refined around the best so far. A run that takes far longer than planned is stopped (``timeout``), which is early
stopping by cost. The number of trials is planned from the steps left (``--max-steps``), the
task's time limits, and ``budget`` (how many baseline runs of compute to spend). The best
artefact is submitted; if nothing beat the shipped configuration, its own artefact is.

Every action carries a ``thought`` (what it tries and what the last trial got), so the
trajectory reads as a research log; the last one is a table of every trial. What the agent
learns from a step it reads from the observation's typed events (the score, the exit code, the
open file's window), never from its wording.
"""
from __future__ import annotations

import math
import random
import re
import shlex
import time
from typing import cast

from ..observation import CommandResult, Scored, ToolResult, events, last
from ..metric import Metric
from ..task import Knob
from . import TaskInfo
from .knobs import Line, clip, config_key, literal, parse_value, samples
from .trials import Cost, Plan, Trial, describe, replan, table as trials_table

RESERVED_STEPS = 2  # restore the best artefact, submit


class SearchAgent:
    """Seeded successive-halving search over a task's declared knobs (see the module docstring)."""

    policy = "search"

    def __init__(self, seed: int = 0, budget: float = 8.0, eta: int = 3, rungs: int = 3, extend: float = 2.0,
                 min_seconds: float = 120.0, max_trials: int = 40, slack_s: float = 60.0, control: bool = True):
        if eta < 2 or rungs < 1 or budget <= 0 or extend <= 0:
            raise ValueError("search: need eta >= 2, rungs >= 1, budget > 0, extend > 0")
        self.seed, self.budget, self.eta, self.rungs, self.extend = seed, budget, eta, rungs, extend
        self.min_seconds, self.max_trials, self.slack_s, self.control = min_seconds, max_trials, slack_s, control
        self.thought = ""

    # -- the Agent protocol --------------------------------------------------------------------
    def reset(self, task: TaskInfo) -> None:
        self.task = task
        self.rng = random.Random(f"{task.id}:{task.seed}:{self.seed}")
        self.knobs = [Knob(**k) for k in task.knobs]
        self.fidelity = next((k for k in self.knobs if k.fidelity), None)
        self.trials: list[Trial] = []
        self.lines: dict[str, Line] = {}
        self.current: dict = {}
        self.open_file: str | None = None
        self.steps = 0
        self.started = time.monotonic()
        self.cost = Cost()
        self.validate_s = 0.0
        self.backed_up: Trial | None = None  # whose artefact is in .search/best
        self.in_workspace: Trial | None = None  # whose artefact the workspace holds now
        self.pending: str | None = None  # a note for the next thought (a plan, a promotion)
        self._reported: Trial | None = None
        self.unsaid = ""
        self._plan = self._research()
        self._begun = False

    def act(self, observation: str) -> str:
        try:
            action, self.thought = self._plan.send(observation) if self._begun else next(self._plan)
        except StopIteration:
            action, self.thought = "submit", "Nothing left to do: submitting."
        self._begun = True
        self.steps += 1
        return action

    # -- the research ---------------------------------------------------------------------------
    def _research(self):
        if not self.knobs:
            yield from self._do("validate", "This task declares no knobs to search: scoring the workspace as it is.")
            return
        files = list(dict.fromkeys(k.file for k in self.knobs))
        for f in files:
            yield from self._read(f, f"Reading {f}, where the knobs "
                                     f"{', '.join(k.name for k in self.knobs if k.file == f)} are set.")
        missing = [k.name for k in self.knobs if k.name not in self.lines]
        self.knobs = [k for k in self.knobs if k.name in self.lines]
        if missing or not self.knobs:
            self.note = f"Could not find {', '.join(missing)} as `NAME = value` lines; leaving them alone. "
        else:
            self.note = ""
        self.fidelity = next((k for k in self.knobs if k.fidelity), None)
        base = Trial(0, dict(self.current), "baseline")
        yield from self._run(base, self.note + f"Trial 0: the shipped configuration as it is ({_show(base.config)}), "
                                             "to measure the baseline score and what one run costs.")
        if base.score is not None:
            yield from self._backup(base)
        if self.fidelity is not None and self.fidelity.name in base.config:
            yield from self._halving(base, self.fidelity)
        else:
            yield from self._random_search(base)
        yield from self._finish(base)

    def _halving(self, base: Trial, fk: Knob):
        f0 = base.config[fk.name]
        plan = self._plan_halving(fk, f0)
        if plan is None:
            self.pending = (f"{self._last()} No successive-halving plan fits the budget left "
                            f"({self._seconds_left():.0f} s, {self._steps_left()} steps): keeping the baseline.")
            return
        plan_text = describe(plan, fk.name, lambda f: literal(fk, f))
        self.pending = f"{self._last()} Plan: successive halving over {fk.name}: {plan_text}."
        rung = [dict(base.config)] + self._samples(base.config, plan.counts[0] - 1)
        fids, counts, r = plan.fidelities, plan.counts, 0
        while r < len(fids):
            top = r == len(fids) - 1
            label = "top rung" if top else f"rung {r + 1}"
            done = []
            for cfg in rung[:counts[r]]:
                trial = Trial(len(self.trials), {**cfg, fk.name: fids[r]}, label)
                # below the top, never spend what the top rung's one run needs
                reserve = 0.0 if top else self.cost(fids[-1]) + self.validate_s
                need = self.cost(fids[r]) + self.validate_s
                steps = self._steps_for(trial) + 1 + (0 if top else self._steps_for(trial) + 1)
                if need + reserve > self._seconds_left() or steps > self._steps_left():
                    self.pending = (f"{self._last()} {label}: no budget for more runs at {fk.name}="
                                    f"{literal(fk, fids[r])} ({self._seconds_left():.0f} s, {self._steps_left()} "
                                    f"steps left).")
                    break
                best = self._best()
                yield from self._run(trial, self._intro(trial, base.config))
                done.append(trial)
                if self._beats(trial, best):
                    yield from self._backup(trial)
            ranked = [t for t in sorted(done, key=self._key) if t.score is not None]
            if top or not ranked:
                return
            left = self._replan(fids[r + 1:], counts[r + 1:], len(ranked))
            if left is None:
                self.pending = f"{self._last()} No budget left to train longer: stopping the search."
                return
            fids, counts, r = fids[:r + 1] + left.fidelities, counts[:r + 1] + left.counts, r + 1
            rung = [{k: v for k, v in x.config.items() if k != fk.name} for x in ranked]
            shipped = {k: v for k, v in base.config.items() if k != fk.name}
            control = r == len(fids) - 1 and self.control and shipped not in rung[:counts[r]]
            self.pending = (f"{self._last()} {label} done: promoting the best {counts[r]} "
                            f"({', '.join(f'trial {x.n}' for x in ranked[:counts[r]])}) to {fk.name}="
                            f"{literal(fk, fids[r])}" + (", and the shipped configuration as a control." if control
                                                      else "."))
            if control:
                rung = rung[:counts[r]] + [shipped]
                counts[r] += 1

    def _random_search(self, base: Trial):
        per = self.cost(None) + self.validate_s
        n = min(self.max_trials, int(self._steps_left() // (self._steps_for(base) + 0.25)),
                int(self._seconds_left() // max(per, 1e-3)))
        if n < 1:
            self.pending = f"{self._last()} No budget left for a search: keeping the baseline."
            return
        explore = max(2, n // 3)
        self.pending = (f"{self._last()} Plan: {n} trials of seeded search: {min(explore, n)} across the knobs' "
                        f"ranges, then the rest around the best so far (about {n * per:.0f} s).")
        for i in range(n):
            best = self._best()
            centre = best.config if best is not None else base.config
            cfg = self._samples(centre, 1, explore=i < explore, progress=i / max(1, n))
            if not cfg:
                self.pending = f"{self._last()} Every nearby configuration has been tried: stopping the search."
                return
            trial = Trial(len(self.trials), cfg[0], "search")
            if self._steps_for(trial) > self._steps_left() or per > self._seconds_left():
                self.pending = f"{self._last()} Stopping the search: the step or time budget is spent."
                return
            yield from self._run(trial, self._intro(trial, centre))
            if self._beats(trial, best):
                yield from self._backup(trial)

    def _finish(self, base: Trial):
        best = self._best()
        table = trials_table(self.trials, self.knobs, self.task.metric, best)
        if best is None:
            yield from self._do("submit", f"{self._last()} No trial produced a valid artefact; submitting what "
                                          f"is there.\n{table}")
            return
        if self.in_workspace is not best and self.backed_up is best:
            art = self._artefact()
            yield from self._do(f"rm -rf {art} && cp -r .search/best {art}",
                                f"{self._last()} Restoring the artefact of trial {best.n}, the best one "
                                f"({self.task.metric}={best.score:.6g}).")
        assert best.score is not None  # _best() picks scored trials only
        verdict = "beats" if _better(self.task.direction, best.score, self.task.baseline) else "does not beat"
        yield from self._do("submit", f"{self._last()} Submitting trial {best.n} ({_show(best.config)}): "
                                      f"{self.task.metric}={best.score:.6g}, which {verdict} the baseline "
                                      f"{self.task.baseline:g}.\n{table}")

    # -- one trial ------------------------------------------------------------------------------
    def _run(self, trial: Trial, thought: str):
        self.unsaid = f"{self._last()} {thought}"  # said with the trial's first action
        self.trials.append(trial)
        t0 = time.monotonic()
        ok = yield from self._apply(trial.config)
        if not ok:
            trial.note = "the edit was refused"
            return
        cmd = self.task.baseline_command
        if cmd:
            expected = self.cost(trial.config.get(self.fidelity.name) if self.fidelity else None)
            limit = min(self.task.step_s - 5, max(3 * expected, expected + self.slack_s)) if expected else None
            run = f"rm -rf {self._artefact()} && " + (
                f"timeout -k 5 {math.ceil(limit)} bash -c {shlex.quote(cmd)}" if limit else cmd)
            obs, _ = yield from self._do(run, f"Training trial {trial.n}.")
            done = last(obs, CommandResult)
            code = done.exit_code if done else None
            if code not in (0, None):
                trial.note = (f"stopped early: over its time allowance of {limit:.0f} s" if code in (124, 137)
                              and limit else f"the run failed (exit code {code})")
                trial.seconds = time.monotonic() - t0
                return
        trained = time.monotonic() - t0
        obs, v_s = yield from self._do("validate", f"Scoring trial {trial.n}.")
        self.validate_s = max(self.validate_s, v_s)
        trial.seconds = time.monotonic() - t0
        trial.score, reason = _score(obs)
        trial.note = reason
        self.in_workspace = trial
        if trial.score is not None:
            fid = trial.config.get(self.fidelity.name) if self.fidelity else None
            self.cost.points.append((fid if fid is not None else 1.0, trained))

    def _apply(self, config: dict):
        """Edit the knob lines that differ from ``config``: one ``edit`` per block of adjacent lines."""
        changed = [k for k in self.knobs if config.get(k.name) != self.current.get(k.name)]
        for file in dict.fromkeys(k.file for k in changed):
            if self.open_file != file:
                yield from self._read(file, f"Opening {file}.")
            ks = sorted((k for k in self.knobs if k.file == file), key=lambda k: self.lines[k.name].number)
            blocks: list[list[Knob]] = []
            block: list[Knob] = []
            for k in ks:
                if block and self.lines[k.name].number != self.lines[block[-1].name].number + 1:
                    blocks.append(block)
                    block = []
                block.append(k)
            blocks.append(block)
            for block in blocks:
                if not any(k in changed for k in block):
                    continue
                text = "\n".join(self._render(k, config[k.name]) for k in block)
                a, b = self.lines[block[0].name].number, self.lines[block[-1].name].number
                what = ", ".join(f"{k.name} {literal(k, self.current[k.name])} -> {literal(k, config[k.name])}"
                                 for k in block if k in changed)
                obs, _ = yield from self._do(f"edit {a}:{b}\n{text}\nend_of_edit", f"Setting {what}.")
                edited = last(obs, ToolResult)
                if edited is None or not edited.ok:
                    return False
                for k in block:
                    self.current[k.name] = config[k.name]
        return True

    def _read(self, file: str, thought: str):
        obs, _ = yield from self._do(f"open {file}", thought)
        self.open_file = file
        view = last(obs, ToolResult)
        numbered = list(enumerate(view.window, view.first)) if view and view.ok and view.first else []
        for k in self.knobs:
            if k.file != file:
                continue
            for number, line in numbered:
                m = re.match(rf"({re.escape(k.name)}\s*=\s*)(.*)$", line)
                parsed = parse_value(m.group(2)) if m else None
                if m and parsed is not None:
                    value, suffix = parsed
                    self.lines[k.name] = Line(number, m.group(1), suffix, value)
                    self.current.setdefault(k.name, value)
                    break

    def _backup(self, trial: Trial):
        if trial.score is None:
            return
        art = self._artefact()
        yield from self._do(f"mkdir -p .search && rm -rf .search/best && cp -r {art} .search/best",
                            f"{self._last()} Keeping a copy of trial {trial.n}'s artefact: the best so far.")
        self.backed_up = trial

    def _do(self, action: str, thought: str):
        """One action; its thought is the pending one (a trial's introduction) if there is one."""
        thought, self.unsaid = (self.unsaid or thought).strip(), ""
        t0 = time.monotonic()
        obs = yield action, thought
        return obs, time.monotonic() - t0

    # -- planning -------------------------------------------------------------------------------
    def _plan_halving(self, fk: Knob, f0) -> Plan | None:
        """The widest plan that fits the time and steps left: n configurations at the lowest rung, the
        best n/eta at the next, ... one at the top (``extend`` x the baseline's fidelity)."""
        top = min(cast(float, fk.high), f0 * self.extend)
        fids = list(dict.fromkeys(clip(fk, top / self.eta ** (self.rungs - 1 - r)) for r in range(self.rungs)))
        return self._replan(fids, [3 * self.eta ** (len(fids) - 1 - r) for r in range(len(fids))], self.max_trials)

    def _replan(self, fids: list, counts: list[int], available: int) -> Plan | None:
        return replan(fids, counts, available, eta=self.eta, control=self.control,
                      trial_s=lambda f: self.cost(f) + self.validate_s, steps_per_edit=self._steps_per_edit(),
                      seconds_left=self._seconds_left, steps_left=self._steps_left)

    def _seconds_left(self) -> float:
        spent = time.monotonic() - self.started
        budget = max(self.budget * (self.trials[0].seconds if self.trials else 0), self.min_seconds)
        episode_left = 0.9 * self.task.episode_s - spent
        return max(0.0, min(budget - spent, episode_left))

    def _steps_left(self) -> int:
        return self.task.max_steps - self.steps - RESERVED_STEPS

    def _steps_per_edit(self) -> int:
        """An edit per knob file, and re-opening the files when there are several."""
        files = len({k.file for k in self.knobs})
        return files + (files if files > 1 else 0)

    def _steps_for(self, trial: Trial) -> int:
        return self._steps_per_edit() + (2 if self.task.baseline_command else 1)

    def _samples(self, centre: dict, n: int, explore: bool | None = None, progress: float = 0.0) -> list[dict]:
        """``n`` new configurations: alternately across the ranges and around ``centre``."""
        tried = {config_key(t.config, self.fidelity) for t in self.trials} | {config_key(centre, self.fidelity)}
        return samples(self.knobs, centre, n, self.rng, tried, self.fidelity, explore, progress)

    # -- bookkeeping ----------------------------------------------------------------------------
    def _key(self, t: Trial):
        if t.score is None:
            return (1, 0.0)
        return (0, Metric.of(self.task.direction).order(t.score))

    def _beats(self, t: Trial, other: Trial | None) -> bool:
        return t.score is not None and (other is None or other.score is None
                                        or _better(self.task.direction, t.score, other.score))

    def _best(self) -> Trial | None:
        """The best scored trial: every scored artefact may be submitted, whatever its rung."""
        scored = [t for t in self.trials if t.score is not None]
        return min(scored, key=self._key) if scored else None

    def _intro(self, trial: Trial, centre: dict) -> str:
        diff = [f"{k.name} {literal(k, centre[k.name])} -> {literal(k, trial.config[k.name])}" for k in self.knobs
                if not k.fidelity and trial.config[k.name] != centre[k.name]]
        fid = f" at {self.fidelity.name}={literal(self.fidelity, trial.config[self.fidelity.name])}" \
            if self.fidelity else ""
        return f"Trial {trial.n} ({trial.rung}{fid}): {', '.join(diff) or 'the shipped settings'}."

    def _last(self) -> str:
        """What the latest trial got (said once, at the start of the next thought)."""
        if self.pending:
            text, self.pending = self.pending, None
            return text
        if not self.trials or self._reported is self.trials[-1]:
            return ""
        t = self._reported = self.trials[-1]
        got = f"{self.task.metric}={t.score:.6g}" if t.score is not None else f"no score ({t.note})"
        return f"Trial {t.n} got {got} in {t.seconds:.0f} s."


    def _artefact(self) -> str:
        return shlex.quote(self.task.artefact.rstrip("/"))

    def _render(self, k: Knob, value) -> str:
        line = self.lines[k.name]
        return f"{line.prefix}{literal(k, value)}{line.suffix}"


def _better(direction: str, a: float, b: float) -> bool:
    return Metric.of(direction).better(a, b)


def _score(obs: str) -> tuple[float | None, str]:
    """The score of a ``validate`` observation (its score event), or why it has none."""
    scored = next((e for e in events(obs, Scored) if e.kind == "validate"), None)
    if scored is not None and not scored.valid:
        return None, scored.reason.split("\n")[0].strip()[:200]
    if scored is None or scored.score is None:
        return None, "no score in the validation output"
    return scored.score, ""


def _show(cfg: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in cfg.items())
