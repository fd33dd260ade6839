"""What an agent receives each step: the text an LLM reads, with typed events beside it.

An :class:`Observation` *is* its text (a ``str``), so ``Agent.act(observation: str)`` and
Gymnasium's text space take it as they are; its ``events`` say the same in typed form (a score,
a tool's result, a command's exit code, the limits left, the end of the episode), so a program
reads those and never the prose. Every piece of observation prose is a template in
:data:`TEMPLATES`: rewording one changes what an LLM reads and nothing a program depends on.

The sealed protocol holds here too: an event carries only what its text shows. During a sealed
episode a :class:`Scored` event holds the dev split's score, never the test split's.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar, Iterable, Literal

from .results import EventKind, Status



@dataclass(frozen=True)
class Event:
    type: ClassVar[str] = "event"

    def to_dict(self) -> dict:
        """The event as plain data (``type`` first), for a trajectory or a log."""
        return {"type": self.type, **{f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                                      if f.metadata.get("record", True)}}


@dataclass(frozen=True)
class Intro(Event):
    """The first observation: the task text (which ends with the sandbox's description), then the
    commands' docs; ``sandbox`` is that description as data (:class:`pytest_mlgym.env.facts.SandboxFacts`)."""
    type: ClassVar[str] = "intro"
    task: str
    commands: str
    sandbox: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Scored(Event):
    """A ``validate``, ``submit`` or autosubmission, as the agent may see it: ``split`` is the split
    shown (``dev`` under the sealed protocol), ``score`` its score (None when invalid, or when the
    task has no dev split to show), ``better`` whether it beats ``baseline`` (the shown split's)."""
    type: ClassVar[str] = "score"
    kind: EventKind
    split: Literal["dev", "test"]
    metric: str
    score: float | None
    valid: bool
    reason: str  # why the artefact is invalid ("" when valid)
    baseline: float
    better: bool | None  # None without a shown score
    metrics: dict = field(default_factory=dict)  # every metric of the shown split


@dataclass(frozen=True)
class ToolResult(Event):
    """A toolbox command's result; for a file view (``open``, ``goto``, ``scroll_*``, ``create``,
    ``edit``, ``insert``), the file and its window: lines ``first`` to ``last`` of ``total``, whose
    text (as shown, one entry per line) is ``window``."""
    type: ClassVar[str] = "tool"
    tool: str
    ok: bool  # False: a usage error, a refused edit, a failure to read or write
    file: str | None = None
    first: int | None = None
    last: int | None = None
    total: int | None = None
    window: tuple[str, ...] = field(default=(), repr=False, metadata={"record": False})  # the text has it
    truncated: bool = False  # the text was cut to its head and tail to fit the output limit


@dataclass(frozen=True)
class CommandResult(Event):
    """A shell command's end: its exit code (None when it was killed or its shell died)."""
    type: ClassVar[str] = "command"
    exit_code: int | None
    timed_out: bool = False
    truncated: bool = False  # the text was cut to its head and tail to fit the output limit


@dataclass(frozen=True)
class LimitsLeft(Event):
    """What is left of the episode after this step, and where it leaves the agent: the open file
    (None before the first ``open``) and the shell's current folder, as sandbox paths."""
    type: ClassVar[str] = "limits"
    steps: int
    seconds: float
    open_file: str | None = None
    cwd: str | None = None


@dataclass(frozen=True)
class EpisodeEnded(Event):
    type: ClassVar[str] = "ended"
    status: Status
    reason: str


class Observation(str):
    """The text an agent reads, with its typed ``events``. Concatenation keeps both."""

    events: tuple[Event, ...]

    def __new__(cls, text: str = "", events: Iterable[Event] = ()):
        self = super().__new__(cls, text)
        self.events = tuple(getattr(text, "events", ())) + tuple(events)
        return self

    def __add__(self, other: str) -> "Observation":
        if not isinstance(other, str):
            return NotImplemented
        return Observation(str(self) + str(other), self.events + tuple(getattr(other, "events", ())))

    def __radd__(self, other: str) -> "Observation":
        if not isinstance(other, str):
            return NotImplemented
        return Observation(str(other) + str(self), tuple(getattr(other, "events", ())) + self.events)

    def with_events(self, *events: Event) -> "Observation":
        return Observation(str(self), self.events + events)

    def retext(self, text: str) -> "Observation":
        """The same events with ``text`` (a cut of this text): results say they were truncated."""
        if text == self:
            return self
        events = (dataclasses.replace(e, truncated=True) if isinstance(e, (ToolResult, CommandResult)) else e
                  for e in self.events)
        return Observation(str(text), events)


def events(observation: str, kind: type[Event] | None = None) -> list:
    """The events of ``observation`` (none for plain text), of type ``kind`` if given."""
    found = getattr(observation, "events", ())
    return [e for e in found if kind is None or isinstance(e, kind)]


def last(observation: str, kind: type[Event]):
    """The last event of type ``kind`` in ``observation``, or None."""
    found = events(observation, kind)
    return found[-1] if found else None


# -- every piece of observation prose ------------------------------------------------------------
# str.format templates, looked up when used, so that a test (or a fork) may reword any of them.
TEMPLATES: dict[str, str] = {
    # the env (pytest_mlgym.env)
    "intro": "{task}\n\n{commands}",
    "empty_action": "Empty action: give a command (see the list of commands in the first message).",
    "exit_code": "{output}\n[exit code {code}]",
    "validation": "Validation: {result}",
    "submission": "Submission: {result}{sealed}",
    "autosubmission": "Autosubmission: {result}{sealed}",
    "sealed_note": "; its test score is recorded, sealed until the episode ends",
    "invalid": "the artefact is invalid: {reason}",
    "no_dev_split": "the artefact is valid; this task has no dev split, so its score stays sealed until the "
                    "episode ends",
    "score": "{metric} = {score:.6g} ({verdict} the baseline {baseline:g}, {split} split); all metrics: {metrics}",
    "verdict_better": "better than",
    "verdict_not_better": "not better than",
    "ended": "[episode ended: {status}]\n{observation}",
    "ended_because": "[episode ended: {status}: {reason}]\n{observation}",
    "time_limit": "episode time limit of {seconds:g} s reached",
    "step_limit": "step limit of {steps} reached",
    "unscorable": "harness error: the final artefact could not be scored: {error}",
    "no_output": "(no output)",
    # the end of the task text: the episode's budget, then the sandbox (pytest_mlgym.env.facts)
    "budget": "You have {steps} steps and {minutes:g} minutes.",
    "env_header": "Environment (this sandbox):",
    "env_python": "- Python {python}; installed: {packages}.",
    "env_no_packages": "none of the usual ML packages",
    "env_no_python": "- The installed Python packages could not be listed (no `python3` answered in the sandbox).",
    "env_no_network": "- No network: downloads and `pip install` fail; use what is installed.",
    "env_network": "- The network is reachable.",
    "env_memory": "- Memory: {memory_mb} MB for all your processes together (`free` shows the machine's, not "
                  "this limit); a process that needs more is killed.",
    "env_cpus": "- CPU cores you may use: {cpus:g}.",
    "env_gpus": "- GPUs: {count} (CUDA numbers them from 0).",
    "env_no_gpu": "- No GPU: everything runs on the CPU.",
    # the toolbox (pytest_mlgym.tools)
    "unparsable": "Could not parse the command line: {error}",
    "no_text": "`{tool}` takes no text after its first line. Usage: {usage}",
    "tool_error": "Error: {error}\nUsage: {usage}",
    "view_header": "[File: {file} ({total} lines total)]",
    "view_above": "({count} more lines above)",
    "view_line": "{number}:{line}",
    "view_below": "({count} more lines below)",
    "line_cut": "{line} [... {count} characters cut]",
    "created": "Created {path}.\n{view}",
    "edited": "Edited {path}: lines {start}-{end} replaced by {count} lines.\n{view}",
    "inserted": "Inserted {count} lines after line {at} of {path}.\n{view}",
    "kept": "the file was left as it was",
    "not_created": "the file was not created",
    "too_nested": "Your edit was rolled back ({was}): {path} is nested too deeply for Python to compile.",
    "syntax_error": "Your edit was rolled back ({was}): it introduces a syntax error:\n  {where}: {message}\n"
                    "  {code}\nFix it and try again.",
    "listing": "{title}:\n{hits}",
    "listing_more": "{listing}\n(more than {max} {unit}; narrow the search)",
    "dir_hits": 'Files containing "{text}" in {where} (file:matches)',
    "dir_none": 'No matches for "{text}" in {where}',
    "file_hits": 'Lines containing "{text}" in {path}',
    "file_none": 'No matches for "{text}" in {path}',
    "find_hits": 'Files named "{name}" under {where}',
    "find_none": 'No file named "{name}" under {where}',
    # refusals of interactive programs (pytest_mlgym.interactive)
    "refused_follow": "Refused: `tail -f` never ends. Show the end of the file with `tail -n 50 <file>` instead.",
    "refused_interactive": "Refused: {what} would wait for a terminal that does not exist here. Use the file tools "
                           "(open, edit, insert, create) or a non-interactive command (e.g. `python script.py`, "
                           "`python -c '...'`).",
    "interactive_python": "an interactive Python",
    "interactive_program": "`{program}`",
    # the commands' docs at the end of the first observation (pytest_mlgym.tooldocs)
    "docs_header": "COMMANDS (one per step)",
    "docs_block": "Text goes on the following lines, ended by `{end}`.",
    "docs_other": "<anything else>",
    "docs_shell": "Runs in bash in your workspace (cd and variables persist).",
    "docs_tools": "Each is a tool: call one per turn, with its arguments (<x> is required, [<x>] optional).",
    "docs_block_tool": "The text goes in its `text` argument.",
    "docs_bash": "bash <command>",
    "docs_shell_tool": "Run a shell command in your workspace (cd and variables persist).",
    "docs_footer": "The artefact that is scored is `{artefact}` in the workspace. Each command may run for "
                   "{step_s:g} s;\nlonger ones are killed. Interactive programs (vim, nano, bare python, git, less) "
                   "are refused.",
}


def say(template: str, **fields) -> str:
    """The text of ``TEMPLATES[template]`` with ``fields`` filled in."""
    return TEMPLATES[template].format(**fields)
