"""``python -m pytest_mlgym export``: recorded runs as research data.

``--format sft`` writes ``<out>/sft.jsonl``, one line per run that beat the baseline (its record
has ``passed`` and its policy is not ``baseline``)::

    {"messages": [{"role": "system", "content": ...}, {"role": "user", "content": <task>},
                  {"role": "assistant", "content": <action 1>}, {"role": "user", "content": <obs 1>},
                  ..., {"role": "assistant", "content": <last action>}],
     "metadata": {"task": ..., "agent": ..., "seed": ..., "score": ..., "baseline": ..., ...}}

in the text format of the ``llm`` harness (``agents/prompts/default.yaml``): its system prompt
(text mode, with the tool docs generated for the task), the task text as the first user turn,
each observation wrapped in its ``observation`` template (step, money and minutes left), each
action as ``DISCUSSION`` + the agent's thought (when it gave one) + the command in a fenced
block. The conversation ends with the last action: what followed (the score) is in metadata.
Observations are those of the saved trajectory (cut to their head and tail).

``--format inspect`` writes one Inspect AI eval log (``.eval``) per (session, task, agent) into
``<out>/``, all runs included: the task is the Inspect task, the agent its model, each seed a
sample (id = seed) holding the whole conversation (the last observation too), the scores
``passed`` (C/I, the run's verdict) and ``score`` (best submission, best attempt, normalised),
token use, and the scored artefacts' hashes. ``inspect view --log-dir <out>`` browses them.

A run without a saved trajectory, or whose trajectory is missing, unreadable or was replaced by a
later run of the same (task, agent, seed), is skipped with a one-line warning on stderr.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .agents.chat import COST_LIMIT, load_prompts, observation_turn, system_message, task_message
from .observation import say
from .metric import Metric
from .results import ResultsStore, RunRecord
from .tooldocs import docs


@dataclass
class Run:
    record: RunRecord
    steps: list[dict]  # the saved trajectory, one entry per step, the reset first


def main(results_path: Path, fmt: str, out_dir: Path, sessions: list[str] | None = None) -> Path:
    """Export the runs of ``results_path`` (of ``sessions`` only, if given) as ``fmt`` into ``out_dir``;
    returns the file (sft) or folder (inspect) written."""
    if fmt not in ("sft", "inspect"):
        raise ValueError(f"unknown export format '{fmt}'; valid: sft, inspect")
    found = load_runs(Path(results_path), sessions)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if fmt == "sft":
        return write_sft(found, out_dir / "sft.jsonl")
    return write_inspect(found, out_dir)


def warn(message: str) -> None:
    print(f"mlgym export: warning: {message}", file=sys.stderr)


def load_runs(results_path: Path, sessions: list[str] | None = None) -> list[Run]:
    """The recorded runs with their trajectories, in the order of the results file."""
    records = ResultsStore(results_path).read()
    latest = {r.trajectory: i for i, r in enumerate(records) if r.trajectory}  # later runs overwrite the file
    runs = []
    for i, rec in enumerate(records):
        if sessions and rec.session not in sessions:
            continue
        name = f"{rec.task}/{rec.agent}/seed {rec.seed} (session {rec.session})"
        if not rec.trajectory:
            warn(f"{name}: no trajectory was saved; skipped")
            continue
        if latest[rec.trajectory] != i:
            warn(f"{name}: its trajectory {rec.trajectory} was replaced by a later run's; skipped")
            continue
        path = results_path.parent / rec.trajectory
        try:
            steps = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            if not all(isinstance(s, dict) and "action" in s for s in steps):
                raise ValueError("a line is not a step object")
        except FileNotFoundError:
            warn(f"{name}: trajectory {path} is missing; skipped")
            continue
        except (OSError, ValueError) as e:
            warn(f"{name}: trajectory {path} cannot be read ({' '.join(str(e).split())[:200]}); skipped")
            continue
        runs.append(Run(rec, steps))
    return runs


# -- the conversation, as the llm harness shows it --------------------------------------------------
def conversation(run: Run, final: bool = False) -> list[dict]:
    """System prompt, task, then action / observation turns; the last observation only if ``final``."""
    prompts = _prompts()
    steps = run.steps
    reset = steps[0] if steps and steps[0].get("action") == "(reset)" else {}
    acts = steps[1:] if reset else steps
    meta = reset.get("task") or {}
    first = str(reset.get("observation", ""))
    if meta.get("artefact") and meta.get("step_s"):
        commands = docs(meta["artefact"], float(meta["step_s"]))
    else:  # a trajectory saved before the reset entry held the task: the docs are the end of its text
        mark = "\n\n" + say("docs_header")
        commands = first[first.find(mark):].strip() if mark in first else ""
    task = reset.get("task_text") or task_message(first, commands)
    messages = [{"role": "system", "content": system_message(prompts, commands)}, {"role": "user", "content": task}]
    rec = run.record
    max_steps = int(meta.get("max_steps") or rec.steps or len(acts))
    episode_s = float(meta.get("episode_s") or 0)
    for n, step in enumerate(acts):
        messages.append({"role": "assistant", "content": assistant_text(step), "step": step.get("step", n + 1)})
        if n == len(acts) - 1 and not final:
            break
        k, obs = int(step.get("step", n + 1)), str(step.get("observation", ""))
        if n == len(acts) - 1:  # the end of the episode (its score): no agent saw it, so no step counter
            messages.append({"role": "user", "step": k, "content": obs})
            break
        spent = sum(u.get("cost_usd", 0.0) for u in rec.usage if u.get("step", 0) <= k)
        left = max(0.0, episode_s - float(step.get("t", 0.0))) / 60
        messages.append({"role": "user", "step": k, "content": observation_turn(
            prompts, obs, step=k + 1, max_steps=max_steps, spent=spent, cost_limit=COST_LIMIT, minutes_left=left,
            open_file=step.get("open_file"), cwd=step.get("cwd"))})
    return messages


@functools.lru_cache(maxsize=1)
def _prompts() -> dict:
    return load_prompts("default")


def assistant_text(step: dict) -> str:
    """An action in the llm harness's text format: the discussion, then the command in a fenced block."""
    block = f"```\n{step['action']}\n```"
    thought = str(step.get("thought") or "").strip()
    return f"DISCUSSION\n{thought}\n\n{block}" if thought else block


def scored(run: Run) -> list[dict]:
    """Every validate/submit of the run with its artefact's hash (from the trajectory)."""
    return [s for step in run.steps for s in step.get("scored", ())]


def metadata(run: Run) -> dict:
    rec = run.record
    sub = rec.best_submission
    last = next((s for s in reversed(scored(run)) if s.get("kind") != "validate"), None)
    return {"task": rec.task, "agent": rec.agent, "policy": rec.policy, "seed": rec.seed, "session": rec.session,
            "size": rec.size, "metric": rec.metric, "direction": rec.direction, "score": sub,
            "best_attempt": rec.best_attempt, "baseline": rec.baseline,
            "normalised": rec.normalised(sub),  # 0 = baseline, 1 = reference (None: no reference anchor)
            "passed": rec.passed, "verdict": rec.verdict, "status": rec.status, "steps": rec.steps,
            "wall_s": rec.wall_s, "cost_usd": rec.cost_usd, "tokens": rec.tokens, "trajectory": rec.trajectory,
            "artefact": (last or {}).get("artefact")}


# -- sft -------------------------------------------------------------------------------------------
def write_sft(runs: list[Run], path: Path) -> Path:
    chosen = []
    for run in runs:
        rec = run.record
        if rec.passed and rec.policy != "baseline":
            if any(s.get("action") != "(reset)" for s in run.steps):
                chosen.append(run)
            else:
                warn(f"{rec.task}/{rec.agent}/seed {rec.seed} (session {rec.session}): no action in its trajectory; "
                     f"skipped")
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for run in chosen:
            messages = [{"role": m["role"], "content": m["content"]} for m in conversation(run)]
            f.write(json.dumps({"messages": messages, "metadata": metadata(run)}, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    print(f"mlgym export: {len(chosen)} of {len(runs)} runs beat the baseline: {path}", file=sys.stderr)
    return path


# -- inspect ---------------------------------------------------------------------------------------
def write_inspect(runs: list[Run], out_dir: Path) -> Path:
    try:
        from inspect_ai.log import write_eval_log
    except ImportError:
        raise SystemExit("mlgym export: --format inspect needs inspect_ai: "
                         "pip install 'pytest-mlgym[export]'") from None
    groups: dict[tuple[str, str, str], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.record.session, run.record.task, run.record.agent), []).append(run)
    for key, group in groups.items():
        log = eval_log(key, sorted(group, key=lambda r: r.record.seed))
        write_eval_log(log, str(out_dir / f"{_fs(log.eval.created)}_{_fs(key[1])}_{log.eval.eval_id}.eval"))
    print(f"mlgym export: {len(runs)} runs in {len(groups)} Inspect logs: {out_dir}", file=sys.stderr)
    return out_dir


def eval_log(key: tuple[str, str, str], runs: list[Run]):
    """One Inspect ``EvalLog`` for the runs of one agent on one task in one session."""
    from inspect_ai.log import (EvalConfig, EvalDataset, EvalLog, EvalMetric, EvalPlan, EvalPlanStep, EvalResults,
                                EvalSample, EvalScore, EvalSpec, EvalStats)
    from inspect_ai.model import ModelOutput

    from . import __version__

    session, task, agent = key
    first = runs[0].record
    samples: list = []
    usage_total: dict = {}
    for run in runs:
        rec = run.record
        sample = EvalSample(
            id=rec.seed, epoch=1, input=_task_text(run), target=f"{rec.metric} {Metric.of(rec.direction).sign} "
                                                                 f"{rec.baseline:g}",
            messages=_chat(run, agent), output=ModelOutput.from_content(agent, _last_action(run)),
            scores=_scores(run), metadata={**metadata(run), "scored": scored(run)},
            model_usage=_usage(rec), started_at=_iso(rec.finished_at - rec.wall_s),
            completed_at=_iso(rec.finished_at), total_time=rec.wall_s, working_time=rec.wall_s)
        for model, u in sample.model_usage.items():
            usage_total[model] = usage_total[model] + u if model in usage_total else u
        samples.append(sample)
    started = min(r.record.finished_at - r.record.wall_s for r in runs)
    eval_id = hashlib.sha256("\0".join(key).encode()).hexdigest()[:22]
    passed = [r.record.passed for r in runs]
    valid = [r for r in runs if r.record.best_submission is not None]
    score_metrics = {}
    if valid:
        best = Metric.of(first.direction).best(r.record.best_submission for r in valid)
        norm = [n for r in valid if (n := metadata(r)["normalised"]) is not None]
        score_metrics = {"best": EvalMetric(name="best", value=best)}
        if norm:  # runs whose size declares a reference anchor
            score_metrics["mean_normalised"] = EvalMetric(name="mean_normalised", value=sum(norm) / len(norm))
    return EvalLog(
        status="success",
        eval=EvalSpec(
            eval_id=eval_id, run_id=session, created=_iso(started), task=task, task_id=eval_id,
            task_display_name=task, solver=first.policy, tags=["mlgym", first.size],
            dataset=EvalDataset(name=task, samples=len(runs), sample_ids=[r.record.seed for r in runs]),
            model=agent, config=EvalConfig(epochs=1, message_limit=None), packages={"pytest_mlgym": __version__},
            metadata={"session": session, "size": first.size, "metric": first.metric, "direction": first.direction,
                      "baseline": first.baseline, "policy": first.policy, "source": "pytest-mlgym"}),
        plan=EvalPlan(steps=[EvalPlanStep(solver=first.policy, params={"agent": agent})]),
        results=EvalResults(
            total_samples=len(runs), completed_samples=len(runs),
            scores=[EvalScore(name="passed", scorer="passed", scored_samples=len(runs),
                              metrics={"accuracy": EvalMetric(name="accuracy", value=sum(passed) / len(passed))}),
                    EvalScore(name="score", scorer="score", scored_samples=len(valid),
                              unscored_samples=len(runs) - len(valid), metrics=score_metrics)]),
        stats=EvalStats(started_at=_iso(started), completed_at=_iso(max(r.record.finished_at for r in runs)),
                        model_usage=usage_total),
        samples=samples)


def _task_text(run: Run) -> str:
    return conversation(run)[1]["content"]


def _last_action(run: Run) -> str:
    texts = [m["content"] for m in conversation(run) if m["role"] == "assistant"]
    return texts[-1] if texts else ""


def _chat(run: Run, agent: str) -> list:
    from inspect_ai.model import ChatMessageAssistant, ChatMessageSystem, ChatMessageUser

    by_step = {s.get("step"): s for s in run.steps}
    out: list = []
    for m in conversation(run, final=True):
        step = by_step.get(m.get("step"), {})
        if m["role"] == "system":
            out.append(ChatMessageSystem(content=m["content"]))
        elif m["role"] == "user":
            extra = {k: step[k] for k in ("reward", "t", "scored") if k in step} if "step" in m else {}
            out.append(ChatMessageUser(content=m["content"], metadata={"step": m.get("step", 0), **extra}))
        else:
            out.append(ChatMessageAssistant(content=m["content"], model=agent, source="generate",
                                            metadata={"step": m["step"], "action": step.get("action")}))
    return out


def _scores(run: Run) -> dict:
    from inspect_ai.scorer import Score

    rec, meta = run.record, metadata(run)
    answer = (meta["artefact"] or {}).get("sha256")
    return {"passed": Score(value="C" if rec.passed else "I", answer=answer, explanation=rec.verdict),
            "score": Score(value={"best_submission": rec.best_submission, "best_attempt": rec.best_attempt,
                                  "normalised": meta["normalised"]},
                           answer=answer, explanation=f"{rec.status}{': ' + rec.reason if rec.reason else ''}",
                           metadata={"scores": [s.model_dump() for s in rec.scores]})}


def _usage(rec: RunRecord) -> dict:
    from inspect_ai.model import ModelUsage

    out: dict = {}
    for u in rec.usage:
        model = str(u.get("model") or rec.agent)
        i, o = int(u.get("prompt_tokens", 0) or 0), int(u.get("completion_tokens", 0) or 0)
        prev = out.get(model) or ModelUsage(total_cost=0.0)
        out[model] = ModelUsage(input_tokens=prev.input_tokens + i, output_tokens=prev.output_tokens + o,
                                total_tokens=prev.total_tokens + i + o,
                                total_cost=(prev.total_cost or 0.0) + float(u.get("cost_usd", 0.0) or 0.0))
    return out


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(max(0.0, ts), timezone.utc).isoformat(timespec="seconds")


def _fs(text: str) -> str:
    """A file-name part as Inspect writes it (``{created}_{task}_{id}``: no ``_ / : +`` inside a part)."""
    return "".join("-" if c in "_/:+\\ " else c for c in text)
