"""A task's knobs as the ``search`` agent handles them: values read and written as Python
literals, configurations sampled across the knobs' ranges or nudged around a point."""
from __future__ import annotations

import ast
import io
import math
import random
import tokenize
from dataclasses import dataclass
from typing import cast

from ..task import Knob


@dataclass
class Line:
    """Where a knob is set: ``<prefix><value><suffix>`` on line ``number`` of its file."""
    number: int
    prefix: str  # "NAME = "
    suffix: str  # spaces and the comment after the value
    value: object


def parse_value(text: str):
    """``(value, suffix)`` of the right-hand side of a ``NAME = <literal>  # comment`` line."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError):
        return None
    cut = next((t.start[1] for t in tokens if t.type == tokenize.COMMENT), len(text))
    expr = text[:cut].rstrip()
    try:
        return ast.literal_eval(expr), text[len(expr):]
    except (ValueError, SyntaxError):
        return None


def literal(k: Knob, v) -> str:
    """``v`` written as the Python literal of the knob's type."""
    if v is None:
        return "-"
    if k.type == "bool":
        return "True" if v else "False"
    if k.type == "int":
        return str(int(v))
    if k.type == "float":
        s = f"{float(v):.3g}"
        return s if any(c in s for c in ".en") else s + ".0"
    return repr(v)


def _range(k: Knob) -> tuple[float, float]:
    """``(low, high)`` of a numeric knob (the task's validation requires both)."""
    return cast(float, k.low), cast(float, k.high)


def clip(k: Knob, v: float):
    low, high = _range(k)
    v = min(max(v, low), high)
    return int(round(v)) if k.type == "int" else float(f"{v:.3g}")


def uniform(k: Knob, rng: random.Random):
    if k.type in ("choice",):
        return rng.choice(cast(list, k.choices))
    if k.type == "bool":
        return rng.random() < 0.5
    low, high = _range(k)
    if k.log:
        return clip(k, math.exp(rng.uniform(math.log(low), math.log(high))))
    return clip(k, rng.uniform(low, high))


def nudge(k: Knob, v, rng: random.Random, scale: float):
    if k.type == "choice":
        choices = cast(list, k.choices)
        return rng.choice([c for c in choices if c != v] or choices)
    if k.type == "bool":
        return not v
    if k.log and v > 0:
        new = clip(k, v * math.exp(rng.gauss(0, 0.8 * scale)))
    else:
        low, high = _range(k)
        new = clip(k, v + rng.gauss(0, 0.2 * scale * (high - low)))
    if new == v and k.type == "int":
        new = clip(k, v + rng.choice((-1, 1)))
    return new


def config_key(cfg: dict, fidelity: Knob | None) -> tuple:
    """What makes a configuration new: its values, the fidelity knob left out."""
    return tuple(sorted((k, repr(v)) for k, v in cfg.items() if fidelity is None or k != fidelity.name))


def samples(knobs: list[Knob], centre: dict, n: int, rng: random.Random, tried: set, fidelity: Knob | None,
            explore: bool | None = None, progress: float = 0.0) -> list[dict]:
    """``n`` configurations not in ``tried`` (which they join): alternately across the ranges and
    around ``centre`` (or all one way, as ``explore`` says), nudged less as ``progress`` nears 1."""
    out: list[dict] = []
    for i in range(n * 20):
        if len(out) == n:
            break
        wide = explore if explore is not None else i % 2 == 1
        cfg = dict(centre)
        for k in knobs:
            if k.fidelity:
                continue
            if wide:
                cfg[k.name] = uniform(k, rng)
            elif rng.random() < 0.5:
                cfg[k.name] = nudge(k, centre[k.name], rng, scale=1.0 - 0.7 * progress)
        key = config_key(cfg, fidelity)
        if key not in tried:
            tried.add(key)
            out.append(cfg)
    return out
