"""The trajectory: the agent's view of an episode, one entry per step (the reset first), for saving.

An entry is ``{"step", "action", "observation", "reward", "t"}`` plus, on a step that scored the
artefact, ``"scored"``: one item per score with the split the agent may see (never the sealed one)
and the content hashes of the artefact and of the files changed since the last score
(:class:`pytest_mlgym.fingerprint.ScoreFingerprints`). The agent's thought, when it gives one, is
attached to its step's entry by :meth:`Trajectory.annotate`. A ``list`` of plain dicts, so that it
saves as JSON as it is.
"""
from __future__ import annotations


class Trajectory(list):
    def __init__(self, *entries: dict):
        super().__init__(entries)
        self._scored: list[dict] = []  # what the current step scored, for its entry

    def add_score(self, item: dict) -> None:
        """A score taken during the current step: it goes into that step's entry."""
        self._scored.append(item)

    def add_step(self, step: int, action: str, observation: str, reward: float, t: float) -> dict:
        """The entry of one step (or of the reset), with what it scored."""
        entry = {"step": step, "action": action, "observation": observation, "reward": reward, "t": round(t, 3)}
        if self._scored:
            entry["scored"], self._scored = self._scored, []
        self.append(entry)
        return entry

    def flush(self) -> None:
        """The episode ended between steps (an agent error, its cost limit): what that scored goes
        into the last entry."""
        if self._scored and self:
            self[-1].setdefault("scored", []).extend(self._scored)
            self._scored = []

    def annotate(self, index: int, **fields) -> bool:
        """Add ``fields`` to entry ``index`` (e.g. the agent's thought to the entry its action logged:
        ``index`` is ``len(trajectory)`` before the step); False when there is no such entry."""
        if not 0 <= index < len(self):
            return False
        self[index].update(fields)
        return True

    @property
    def last_observation(self) -> str:
        return self[-1]["observation"] if self else ""
