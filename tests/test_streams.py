"""pytest_mlgym.sdk.streams: randomness the agent plays against, from the evaluator's secret."""
from __future__ import annotations

import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pytest_mlgym.sdk.streams import SecretMissing, key, numpy_stream, random_stream

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "secret").write_text("ab" * 32 + "\n")
    return tmp_path


def test_deterministic_per_seed_and_purpose_and_independent(folder):
    a = [random_stream(0, "opponent", folder).random() for _ in range(3)]
    assert a == [random_stream(0, "opponent", folder).random() for _ in range(3)]
    assert random_stream(1, "opponent", folder).random() != random_stream(0, "opponent", folder).random()
    assert random_stream(0, "other", folder).random() != random_stream(0, "opponent", folder).random()
    assert list(numpy_stream(0, "opponent", folder).integers(0, 1000, 5)) == \
        list(numpy_stream(0, "opponent", folder).integers(0, 1000, 5))
    (folder / "secret").write_text("cd" * 32)  # another secret, another stream
    assert random_stream(0, "opponent", folder).random() not in a


def test_no_stream_the_agent_code_is_seeded_with_matches(folder):
    """The agent's code gets random.seed(seed) and np.random.seed(seed); a guessable seed gives
    nothing: no small seed reproduces the evaluator's first draws."""
    ours = random_stream(0, "opponent", folder)
    first = [ours.random() for _ in range(4)]
    gen = numpy_stream(0, "opponent", folder).random(4).tolist()
    for s in range(2000):
        assert [random.Random(s).random() for _ in range(1)] != first[:1]
        assert np.random.default_rng(s).random(1).tolist() != gen[:1]
        assert np.random.RandomState(s).random_sample(1).tolist() != gen[:1]
    assert key(0, "opponent", folder) != 0


@pytest.mark.parametrize("content, message", [(None, "no evaluator secret"), ("abcd", "at least 32 hex"),
                                              ("not hex at all, but long enough to pass a length check", "hex")])
def test_a_missing_or_weak_secret_is_a_one_line_error(tmp_path, content, message):
    if content is not None:
        (tmp_path / "secret").write_text(content)
    with pytest.raises(SecretMissing, match=message) as e:
        random_stream(0, "opponent", tmp_path)
    assert "\n" not in str(e.value) and str(tmp_path / "secret") in str(e.value)


def test_the_secret_is_found_beside_the_evaluator_being_run(folder):
    (folder / "evaluate.py").write_text("from pytest_mlgym.sdk.streams import random_stream\n"
                                        "print(random_stream(7, 'x').random())\n")
    out = subprocess.run([sys.executable, str(folder / "evaluate.py")], capture_output=True, text=True, check=True)
    assert float(out.stdout) == random_stream(7, "x", folder).random()


def test_every_evaluator_that_plays_against_the_agent_uses_a_secret_stream():
    """The games' opponents come from a stream with a real secret, never from MLGYM_SEED: the games
    family draws them from ctx.stream / ctx.numpy_stream, and no evaluator seeds an RNG itself."""
    family = (ROOT / "pytest_mlgym" / "sdk" / "families" / "games.py").read_text()
    assert re.search(r"ctx\.numpy_stream if numpy else ctx\.stream", family)
    assert not re.search(r"(random\.Random|default_rng|RandomState|random\.seed)\(", family)
    games = [p for p in (ROOT / "tasks").glob("*/private/evaluate.py")
             if "row_strategy" in p.read_text() or "families import games" in p.read_text()]
    assert {p.parents[1].name for p in games} >= {"battle_of_sexes", "blotto", "prisoners_dilemma"}
    for evaluator in games:
        text = evaluator.read_text()
        assert "games.play(ctx" in text or "pytest_mlgym.sdk.streams" in text or "ctx.stream(" in text, evaluator
        assert not re.search(r"(random\.Random|default_rng|RandomState)\(\s*(ctx\.)?seed", text), evaluator
        secret = (evaluator.parent / "secret").read_text().strip()
        assert len(bytes.fromhex(secret)) >= 16, evaluator
