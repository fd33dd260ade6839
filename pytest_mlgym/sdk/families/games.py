"""Iterated two-player games: the agent's ``row_strategy(history)`` against a hidden column player.

A game is ``rounds`` simultaneous moves; ``history`` is the game so far, a list of
``(row_move, col_move)`` tuples (empty in round 1). The games of a split are played in lockstep
(every game's round 1, then round 2, ...): one round trip to the agent's code per round, which
runs in a sandbox of its own (:class:`~pytest_mlgym.sdk.untrusted.Untrusted`). The column player
draws from the evaluator's own stream, one per split (``ctx.stream("column player", split)``).
The test split plays ``games`` games; the dev split (what ``validate`` shows) ``DEV_FRACTION`` as
many on its disjoint stream, after the test games, in the same process of the agent's code (whose
``random`` is seeded with the evaluation seed, so the test games are played as they always were).

    def column(histories, rng):       # this round's column move in every game; it sees only the
        return [1 for h in histories]  # earlier rounds (the moves are simultaneous)

    def score(ctx):
        played = games.play(ctx, column, games.binary, rounds=10, games=10_000)
        return {split: {"score": mean_payoff(hs)} for split, hs in played.items()}
"""
from __future__ import annotations

import os
from typing import Any, Callable

from .. import readers
from ..evaluator import Context, Invalid
from ..untrusted import Untrusted

DEV_FRACTION = 0.2
PURPOSE = "column player"  # the stream's purpose: today's test stream of every game task
MAX_BYTES = 16 << 20  # a strategy.py is code, not data
# Wall-clock budget of the agent's code (import and every round of both splits). The override is
# for the tests; the harness never sets it, so an agent always gets the documented 30 s.
BUDGET_S = float(os.environ.get("MLGYM_TEST_STRATEGY_BUDGET_S") or 30)

Column = Callable[[list, Any], list]  # (histories, rng) -> this round's column move per game
Check = Callable[[Any], "str | None"]  # a row move -> None when valid, else why not


def binary(move) -> str | None:
    """A move of a 2x2 game: 0 or 1 (a bool is an int; 1.0 and "1" are not)."""
    return None if type(move) in (int, bool) and move in (0, 1) else "expected 0 or 1"


def play(ctx: Context, column: Column, check: Check, *, rounds: int, games: int, numpy: bool = False,
         fn: str = "row_strategy") -> dict[str, list[list[tuple]]]:
    """Every game's history (``[(row_move, col_move), ...]``) per split: ``{"dev": [...], "test": [...]}``.

    ``column(histories, rng)`` gives the column's moves of one round; ``rng`` is the split's stream
    (a ``numpy.random.Generator`` with ``numpy``, else a ``random.Random``); draw from it in an order
    that does not depend on the row's moves, so the stream is the same whatever the agent plays.
    ``check(move)``: the reason a row move is invalid, or None. Raises Invalid / UntrustedError."""
    stream = ctx.numpy_stream if numpy else ctx.stream
    splits = {"test": (games, stream(PURPOSE, "test")), "dev": (round(games * DEV_FRACTION), stream(PURPOSE, "dev"))}
    path = readers.regular_file(ctx.artefact, MAX_BYTES)
    played, first = {}, 0  # games are numbered in the order played, for the reasons
    with Untrusted(path, seed=ctx.seed, budget_s=BUDGET_S) as agent:
        for split, (n, rng) in splits.items():
            histories: list[list[tuple]] = [[] for _ in range(n)]
            for rnd in range(rounds):
                rows = agent.map(fn, [[h] for h in histories], tuples=True)
                if not isinstance(rows, list) or len(rows) != n:
                    raise Invalid("malformed reply from the strategy process")
                for g, move in enumerate(rows):
                    if why := check(move):
                        raise Invalid(f"{fn} returned {repr(move)[:80]} ({type(move).__name__}): {why} "
                                      f"(game {first + g}, round {rnd + 1})")
                cols = column(histories, rng)
                for h, r, c in zip(histories, rows, cols):
                    h.append((int(r) if type(r) is bool else r, c))
            played[split], first = histories, first + n
    return {"dev": played["dev"], "test": played["test"]}
