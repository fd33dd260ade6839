"""``python -m pytest_mlgym check-task DIR... [--quick]``: the generic checks on task folders.

pytest runs :mod:`pytest_mlgym.testing.task_checks` on the folders (any folder: it need not be in
a repository with this package's layout), under an empty configuration of its own (the caller's
pytest.ini, addopts and conftest files play no part), without the benchmark plugin. It prints one
line per check, ``PASS|FAIL|SKIP <task>: <check>[: why]``, and exits 1 when a check failed
(0 otherwise, skips included). ``--quick`` skips the two checks that re-run work: the baseline
run and the second prepare run.
"""
from __future__ import annotations

import importlib
import os
import tempfile
from pathlib import Path

from ..testing import task_checks


class OneLinePerCheck:
    """A pytest plugin that reports each check in one line (pytest's terminal output is off)."""

    def __init__(self, say=print):
        self.say, self.labels, self.failed = say, {}, 0

    def pytest_collection_modifyitems(self, items) -> None:
        for item in items:
            params = getattr(item, "callspec", None)
            task = params.params["checked_dir"].name if params else "?"
            extra = "-".join(part for part in params.id.split("-") if part != task) if params else ""
            name = item.originalname.removeprefix("test_").replace("_", " ")
            self.labels[item.nodeid] = f"{task}: {name}" + (f" [{extra}]" if extra else "")

    def pytest_collectreport(self, report) -> None:
        if report.failed:
            self.failed += 1
            self.say(f"FAIL collecting {report.nodeid or 'the checks'}: {_why(report)}")

    def pytest_runtest_logreport(self, report) -> None:
        label = self.labels.get(report.nodeid, report.nodeid)
        if report.when == "call" or (report.when == "setup" and not report.passed):
            status = "PASS" if report.passed else "SKIP" if report.skipped else "FAIL"
            self.failed += status == "FAIL"
            why = "" if report.passed else _why(report)
            self.say(f"{status} {label}" + (f": {why}" if why else ""))
        elif report.when == "teardown" and report.failed:
            self.failed += 1
            self.say(f"FAIL {label} (teardown): {_why(report)}")


def _why(report) -> str:
    """The one line that says why a check failed or was skipped."""
    rep = report.longrepr
    if isinstance(rep, tuple):  # a skip: (path, line, "Skipped: reason")
        text = str(rep[2]).removeprefix("Skipped: ")
    elif getattr(rep, "reprcrash", None) is not None:
        text = rep.reprcrash.message
    else:
        text = str(rep).strip().splitlines()[-1] if str(rep).strip() else ""
    text = text.removeprefix("Failed: ").removeprefix("AssertionError: ")
    lines = [line for line in text.splitlines() if line.strip()]
    return " ".join(lines[0].split())[:400] if lines else ""


def run(dirs: list[Path], *, size: str = "lite", quick: bool = False, require_reference: bool = False,
        verbose: bool = False, keyword: str | None = None, say=print) -> int:
    """Run the checks on ``dirs``; return pytest's exit code (0 all passed or skipped, 1 a failure)."""
    import pytest

    missing = [d for d in dirs if not (Path(d) / "task.yaml").is_file()]
    if missing:
        say(f"check-task: {missing[0]}: no task.yaml (a task folder holds task.yaml, workspace/, private/evaluate.py)")
        return 4
    env = {"MLGYM_CHECK_TASK_DIRS": os.pathsep.join(str(Path(d).resolve()) for d in dirs), "MLGYM_CHECK_SIZE": size,
           "MLGYM_CHECK_QUICK": "1" if quick else "", "MLGYM_CHECK_REQUIRE_REFERENCE": "1" if require_reference else ""}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    reporter = OneLinePerCheck(say)
    try:
        with tempfile.TemporaryDirectory(prefix="mlgym-check-") as tmp:
            ini = Path(tmp) / "pytest.ini"
            ini.write_text("[pytest]\nmarkers =\n    slow: takes more than about 10 s\n")
            here = Path(task_checks.__file__).parent
            args = [task_checks.__file__, "-c", str(ini), "--rootdir", str(here), "-p", "no:cacheprovider",
                    "-p", "no:mlgym", "-p", "no:anyio", "-p", "no:benchmark", "-p", "no:xdist",
                    "-p", "no:hypothesispytest", "-W", "ignore::DeprecationWarning"]
            args += ["-v"] if verbose else ["-p", "no:terminal"]
            args += ["-k", keyword] if keyword else []
            importlib.reload(task_checks)  # its TestTaskFolder reads the environment set above
            code = pytest.main(args, plugins=[reporter])
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    if reporter.failed:
        return 1
    if code != 0:
        say(f"check-task: pytest exited with {int(code)}" + (": no checks collected" if code == 5 else "")
            + " (run with --verbose to see why)")
    return int(code)


def add_parser(sub) -> None:
    p = sub.add_parser("check-task", help="run the generic checks on task folders (one line per check)")
    p.add_argument("dirs", type=Path, nargs="+", metavar="DIR", help="task folders")
    p.add_argument("--quick", action="store_true", help="no baseline run, no second prepare run")
    p.add_argument("--size", default="lite", choices=("lite", "full"))
    p.add_argument("--require-reference", action="store_true", help="a task without reference/ fails (else skipped)")
    p.add_argument("-k", dest="keyword", default=None, help="only the checks matching this pytest -k expression")
    p.add_argument("--verbose", action="store_true", help="pytest's own output instead of one line per check")


def main(args) -> int:
    return run(args.dirs, size=args.size, quick=args.quick, require_reference=args.require_reference,
               verbose=args.verbose, keyword=args.keyword)
