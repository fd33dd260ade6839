"""The tasks as Gymnasium environments: ``MLGymEnv`` (:mod:`.env`) and its collaborators.

Importing this package registers ``gymnasium.make("mlgym/<task-id>")`` for the task folders of the
default task roots, from a listing of their names (:mod:`.registration`: no task folder is read
at import). The trajectory (``state.trajectory``, saved by the plugin) references workspace files
by content, never copies them: each ``validate``/``submit``/autosubmission adds to its step's entry
the sha256 and size of the scored artefact and of the workspace files changed since the last score
(see :class:`pytest_mlgym.fingerprint.WorkspaceFiles`); ordinary commands cost nothing more.
"""
from __future__ import annotations

from ..fingerprint import tree_sha256
from ..results import STATUSES
from .env import PROTOCOLS, MLGymEnv
from .limits import EpisodeLimits, ends
from .registration import find_task, register, register_all
from .spaces import AnyText
from .state import EpisodeState, ScoreEvent
from .trajectory import Trajectory

__all__ = ["MLGymEnv", "PROTOCOLS", "STATUSES", "EpisodeLimits", "ends", "find_task", "register", "register_all",
           "AnyText", "EpisodeState", "ScoreEvent", "Trajectory", "tree_sha256"]

register_all()
