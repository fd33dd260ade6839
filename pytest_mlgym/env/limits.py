"""The episode's limits (steps, wall time) and what each final status means to Gymnasium.

The env asks :class:`EpisodeLimits` after every step whether a limit ended the episode, and how
long the next shell command may run. The cost limit is the agent's (its model calls cost money,
which only the agent sees): an agent out of money raises ``EpisodeEnd("cost_limit")`` and the
episode ends with that status, scored like any other limit.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..observation import say
from ..results import Status

# the statuses themselves (STATUSES, Status) are the run record's: pytest_mlgym.results
TERMINATED = frozenset({"submitted", "invalid", "error", "cost_limit"})  # the episode ended (Gymnasium: terminated)
# a limit, or the infrastructure (the model provider), cut it short (Gymnasium: truncated)
TRUNCATED = frozenset({"step_limit", "time_limit", "infra_error"})


@dataclass(frozen=True)
class EpisodeLimits:
    max_steps: int  # actions per episode
    episode_s: float  # wall seconds per episode
    step_s: float  # wall seconds per shell command

    def command_timeout(self, elapsed: float) -> float:
        """How long the next shell command may run: a step's limit, never past the episode's end."""
        return max(0.1, min(self.step_s, self.episode_s - elapsed))

    def reached(self, steps: int, elapsed: float) -> tuple[Status, str] | None:
        """``(status, reason)`` of the limit that ends the episode after ``steps`` steps, else None."""
        if elapsed > self.episode_s:
            return "time_limit", say("time_limit", seconds=self.episode_s)
        if steps >= self.max_steps:
            return "step_limit", say("step_limit", steps=self.max_steps)
        return None


def ends(status: str) -> tuple[bool, bool]:
    """Gymnasium's ``(terminated, truncated)`` for an episode's status."""
    return status in TERMINATED, status in TRUNCATED
