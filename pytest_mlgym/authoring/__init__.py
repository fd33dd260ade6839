"""Task authoring tools behind ``python -m pytest_mlgym``: one module per command.

- :mod:`.check`: ``check-task DIR`` runs the generic checks (:mod:`pytest_mlgym.testing.task_checks`);
- :mod:`.measure`: ``measure DIR`` runs the baseline through the engine and writes its scores;
- :mod:`.scaffold`: ``new-task ID`` makes a task folder that passes check-task;
- :mod:`.mlgym_import`: ``import-mlgym CHECKOUT CONFIG`` turns a task of an MLGym checkout into one;
- :mod:`.yamledit`: the one-line edits of ``task.yaml`` that keep the rest of its text and comments.
"""
