"""Readers for artefacts an agent wrote: strict, bounded, and with one-line :class:`Invalid` reasons.

- :func:`regular_file` / :func:`folder`: exists, not a link, not too big;
- :func:`csv_table`: a CSV with an id column and typed columns, one row per expected id, in the
  expected order (``int``, ``float`` (finite), ``str``, or a set of allowed labels);
- :func:`npz`: numeric arrays from a ``.npz`` without pickle, with a cap on the uncompressed size
  and optional exact keys;
- :func:`json_model`: a JSON file validated by a pydantic model.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import zipfile
from pathlib import Path

from .evaluator import Invalid

INTEGER = re.compile(r"^[+-]?[0-9]+$")


def regular_file(path: Path | str, max_bytes: int) -> Path:
    path = Path(path)
    if path.is_symlink():
        raise Invalid(f"{path.name} is a symbolic link; write a regular file")
    if not path.exists():
        raise Invalid(f"{path.name} not found")
    if not path.is_file():
        raise Invalid(f"{path.name} is not a regular file")
    if path.stat().st_size > max_bytes:
        raise Invalid(f"{path.name} is larger than {_size(max_bytes)}")
    return path


def folder(path: Path | str, expected: list[str] | None = None) -> Path:
    """A folder artefact; with ``expected``, exactly those regular files."""
    path = Path(path)
    if path.is_symlink() or not path.is_dir():
        raise Invalid(f"{path.name} must be a folder" + (f" holding {', '.join(expected)}" if expected else ""))
    if expected is not None:
        extra = sorted(n for n in os.listdir(path) if n not in expected)
        if extra:
            raise Invalid(f"unexpected file(s) in {path.name}/: {', '.join(extra)[:200]} (only {', '.join(expected)})")
        for name in expected:
            if (path / name).is_symlink() or not (path / name).is_file():
                raise Invalid(f"missing {name} in {path.name}/")
    return path


def text(path: Path | str, max_bytes: int) -> str:
    raw = regular_file(path, max_bytes).read_bytes()
    try:
        out = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise Invalid(f"{Path(path).name} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    if "\0" in out:
        raise Invalid(f"{Path(path).name} contains NUL bytes")
    return out


def csv_table(path: Path | str, *, id_column: str, columns: dict, ids=None, max_bytes: int = 20 << 20,
              extra_columns: bool = False) -> dict[str, list]:
    """``{column: values}`` of a CSV artefact, rows in the order of ``ids`` when given.

    ``columns`` maps each required column (the id column too) to ``int``, ``float``, ``str`` or a
    collection of allowed values (labels, compared as stripped text)."""
    name = Path(path).name
    content = text(path, max_bytes)
    try:
        rows = [r for r in csv.reader(io.StringIO(content, newline="")) if r]
    except csv.Error as e:
        raise Invalid(f"unreadable CSV {name}: {e}") from None
    if not rows:
        raise Invalid(f"{name} is empty; expected a header {','.join(columns)}")
    header = [h.strip() for h in rows[0]]
    missing = [c for c in columns if c not in header]
    if missing:
        raise Invalid(f"{name}: missing column(s) {', '.join(missing)}; the header must be {','.join(columns)}")
    if not extra_columns and len(header) != len(columns):
        raise Invalid(f"{name}: unexpected column(s) {', '.join(h for h in header if h not in columns)[:120]}")
    if len(set(header)) != len(header):
        raise Invalid(f"{name}: duplicate column names in the header")
    body = rows[1:]
    for n, row in enumerate(body, 2):
        if len(row) != len(header):
            raise Invalid(f"{name} line {n}: {len(row)} field(s), the header has {len(header)}")
    index = {c: header.index(c) for c in columns}
    out = {c: [_cell(row[index[c]], kind, c, n) for n, row in enumerate(body, 2)] for c, kind in columns.items()}
    if ids is not None:
        out = _align(out, id_column, list(ids), name)
    return out


def _cell(cell: str, kind, column: str, line: int):
    value = cell.strip()
    if kind is int:
        if not INTEGER.match(value):
            raise Invalid(f"line {line}: {column} must be an integer, got {cell[:40]!r}")
        return int(value)
    if kind is float:
        try:
            number = float(value)
        except ValueError:
            raise Invalid(f"line {line}: {column} must be a number, got {cell[:40]!r}") from None
        if not math.isfinite(number):
            raise Invalid(f"line {line}: {column} must be finite, got {cell[:40]!r}")
        return number
    if kind is str:
        return value
    if value not in kind:
        raise Invalid(f"line {line}: {column} {cell[:40]!r} is not one of the allowed values")
    return value


def _align(table: dict[str, list], id_column: str, ids: list, name: str) -> dict[str, list]:
    got = table[id_column]
    if len(set(got)) != len(got):
        raise Invalid(f"{name}: duplicate {id_column} values")
    expected = set(ids)
    unknown = [i for i in got if i not in expected]
    if unknown:
        raise Invalid(f"{name}: {len(unknown)} unknown {id_column}(s), e.g. {unknown[0]!r}")
    if len(got) != len(ids):
        lacking = [i for i in ids if i not in set(got)]
        raise Invalid(f"{name}: expected {len(ids)} rows, got {len(got)}; e.g. {id_column} {lacking[0]!r} is missing")
    where = {i: k for k, i in enumerate(got)}
    order = [where[i] for i in ids]
    return {c: [values[k] for k in order] for c, values in table.items()}


def npz(path: Path | str, *, keys: set[str] | None = None, max_bytes: int = 64 << 20) -> dict:
    """The arrays of a ``.npz`` (numbers only: pickled objects are refused), uncompressed size capped."""
    import numpy as np

    path = regular_file(path, max_bytes)
    try:
        with zipfile.ZipFile(path) as zf:
            if sum(info.file_size for info in zf.infolist()) > max_bytes:
                raise Invalid(f"{path.name} is larger than {_size(max_bytes)} uncompressed")
        with np.load(path, allow_pickle=False) as z:
            names = set(z.files)
            if keys is not None and names != set(keys):
                missing, extra = sorted(set(keys) - names), sorted(names - set(keys))
                raise Invalid(f"{path.name}: arrays must be exactly {', '.join(sorted(keys))}"
                              + (f"; missing {', '.join(missing)}" if missing else "")
                              + (f"; unexpected {', '.join(extra)[:120]}" if extra else ""))
            arrays = {k: z[k] for k in sorted(names)}
    except Invalid:
        raise
    except Exception as e:  # not a zip, object arrays, corrupt members
        raise Invalid(f"{path.name} is not a readable .npz of numeric arrays ({type(e).__name__}: "
                      f"{' '.join(str(e).split())[:120]})") from None
    for k, a in arrays.items():
        if a.dtype.kind not in "biuf":
            raise Invalid(f"{path.name}: array {k} has dtype {a.dtype}; only numbers are allowed")
    return arrays


def json_model(path: Path | str, model, max_bytes: int = 1 << 20, context: dict | None = None):
    """A JSON file validated by the pydantic ``model``; the first error in one line. ``context`` is
    passed to the model's validators (``info.context``), e.g. the limits a task sets; a validator's
    ``ValueError`` reads as its own message (no "Value error, " prefix)."""
    from pydantic import ValidationError

    name = Path(path).name
    try:
        data = json.loads(text(path, max_bytes))
    except ValueError as e:
        raise Invalid(f"{name} is not valid JSON: {e}") from None
    try:
        return model.model_validate(data, context=context)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = str(err["ctx"]["error"]) if err["type"] == "value_error" and "error" in err.get("ctx", {}) else err["msg"]
        raise Invalid(f"{name}: {where}: {msg}") from None


def _size(n: int) -> str:
    return f"{n >> 20} MB" if n >= 1 << 20 else f"{n >> 10} kB" if n >= 1 << 10 else f"{n} bytes"
