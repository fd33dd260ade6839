"""An artefact that costs the harness what it does not cost the agent: a sparse ``answer.txt``
(511 MB apparent, no blocks on disk) validated again and again. Copy-out must stream it in
bounded memory and keep its holes, or every ``validate`` costs the harness half a gigabyte of
memory and of host disk. Played as a real episode on every backend, like test_attacks.py.
"""
from __future__ import annotations

import os

import yaml
from redteam import arena, attack, backend  # noqa: F401  (fixtures)

from pytest_mlgym.testing.memory import PeakRSS

MB = 1 << 20


def test_validate_a_sparse_artefact_again_and_again(attack, arena, backend, monkeypatch):  # noqa: F811 (fixtures)
    from pytest_mlgym import evaluation

    # the arena caps files at 100 MB; a task's default (2048 MB) lets the agent make this file
    spec = yaml.safe_load((arena.tiny / "task.yaml").read_text())
    spec["limits"]["file_size_mb"] = 2048
    (arena.tiny / "task.yaml").write_text(yaml.safe_dump(spec))
    copies: list[os.stat_result] = []  # the harness's copy of the artefact, as the evaluator gets it
    real = evaluation.run_evaluator

    def seen(task, size, artefact, *args, **kw):
        copies.append(os.stat(artefact))
        return real(task, size, artefact, *args, **kw)

    monkeypatch.setattr(evaluation, "run_evaluator", seen)
    with PeakRSS() as mem:
        out = attack(["truncate -s 511M answer.txt && du -k answer.txt", "validate", "validate", "validate", "submit"])
    assert mem.grown < 150 * MB, f"the harness grew by {mem.grown >> 20} MB: the artefact was read into memory"
    assert len(copies) == 4, out.steps  # it was copied out (under the limit) and scored every time
    for st in copies:
        assert st.st_size == 511 * MB and st.st_blocks * 512 < 8 * MB, st  # the holes were kept on the host
    assert out.record.status == "invalid" and out.record.reason, out.record
