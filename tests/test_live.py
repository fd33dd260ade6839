"""Live progress: one line per step of every running episode, with -v or --mlgym-live, also under xdist."""
from __future__ import annotations

import json
import re
import time
import types

import pytest

from pytest_mlgym.report import live, terminal, text

ACTIONS = ["echo 9 > answer.txt", "sleep 0.3", "validate", "echo 7 > answer.txt", "submit"]
BEST = ["-", "-", "8", "8", "10"]  # the tiny task's target is 7: score 10 - |x - 7|
STEP = re.compile(r"^(?:\[(gw\d+)\] )?tiny oracle s(\d) step (\d+)/50 best (\S+) \| (.*)$")


@pytest.fixture
def project(bench):
    (bench.path / "agents").mkdir()
    (bench.path / "agents" / "oracle.yaml").write_text("policy: replay\ntrajectory: oracle.jsonl\n")
    (bench.path / "agents" / "oracle.jsonl").write_text("\n".join(json.dumps({"action": a}) for a in ACTIONS))
    return bench


def steps(result) -> list[tuple]:
    """(line number, worker, seed, step, best, action) of every step line."""
    return [(i, *m.groups()) for i, l in enumerate(result.stdout.lines) if (m := STEP.match(l))]


def check_episodes(result, seeds: int, xdist: bool) -> None:
    found = steps(result)
    for seed in range(seeds):
        mine = [s for s in found if s[2] == str(seed)]
        assert [(int(s[3]), s[4], s[5]) for s in mine] == list(zip(range(1, 6), BEST, ACTIONS)), result.stdout.str()
        assert len({s[1] for s in mine}) == 1 and (mine[0][1] is not None) == xdist  # one worker, named under xdist
        passed = next(i for i, l in enumerate(result.stdout.lines) if "PASSED" in l and f"oracle-s{seed}]" in l)
        assert mine[-1][0] < passed  # an episode's steps come before its result line


def test_verbose_prints_one_line_per_step_in_order(project):
    result = project.runpytest("--agent=oracle", "--seeds=2", "-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    check_episodes(result, 2, xdist=False)
    assert len(steps(result)) == 10


def test_verbose_under_xdist_prints_every_workers_steps_through_the_controller(project):
    result = project.runpytest("--agent=oracle", "--seeds=4", "-v", "-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
    check_episodes(result, 4, xdist=True)
    assert len(steps(result)) == 20 and {s[1] for s in steps(result)} == {"gw0", "gw1"}
    assert not (project.path / "reports" / "live").exists()  # the workers' files are removed at the end


@pytest.mark.parametrize("args, ini, shown", [
    ([], "", False),  # off by default
    (["--mlgym-live"], "", True),  # on without -v
    (["--mlgym-live", "-n", "2"], "", True),
    (["-v", "--mlgym-no-live"], "", False),
    ([], "mlgym_live = on", True),
    (["-v"], "mlgym_live = off", False),
])
def test_live_is_on_with_verbose_or_the_flag_and_off_otherwise(project, args, ini, shown):
    if ini:
        project.makeini(f"[pytest]\n{ini}\n")
    project.makepyfile(test_hook=f"""
        def test_the_episode_has_a_step_callback_only_when_live(tiny):
            assert (tiny.on_step is not None) is {shown}  # off: a step costs one `is None` test
    """)
    result = project.runpytest("--agent=oracle", "-p", "no:cacheprovider", "tasks", "test_hook.py", *args)
    result.assert_outcomes(passed=2)
    assert len(steps(result)) == (5 if shown else 0)


def test_a_bad_ini_value_is_a_one_line_usage_error(project):
    project.makeini("[pytest]\nmlgym_live = loud\n")
    result = project.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: mlgym_live: expected one of on, off, auto, got 'loud'"])


def test_actions_are_shortened_to_one_line():
    assert live.short("  ls   -la\t/tmp ") == "ls -la /tmp"
    assert live.short("create a.py\nprint(1)\n") == "create a.py..."
    assert live.short("x" * 100) == "x" * 57 + "..."
    assert live.line("t", "a", 3, 2, 50, 0.123456, "validate") == "t a s3 step 2/50 best 0.1235 | validate"


def test_the_controller_thread_tails_the_workers_files_and_removes_them(tmp_path):
    written = []
    tr = types.SimpleNamespace(write_line=written.append)
    config = types.SimpleNamespace(pluginmanager=types.SimpleNamespace(get_plugin=lambda name: tr))
    printer = live.Printer(config)
    folder = tmp_path / "live" / "session"
    printer.watch(folder)
    writers = [live.FileWriter(folder / f"gw{i}.log") for i in range(2)]
    writers[0]("one")
    writers[1]("two\nlines")  # a line is one line
    deadline = time.monotonic() + 5
    while len(written) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sorted(written) == ["[gw0] one", "[gw1] two lines"]  # printed by the thread, no drain called
    writers[0]("three")
    printer.stop()  # the last lines are written at the end
    assert written[-1] == "[gw0] three" and not (tmp_path / "live").exists()
    for w in writers:
        w.close()


# -- agent text never reaches the terminal as control characters ----------------------------------
EVIL = ["echo 7 > answer.txt # \x1b[2J\x1b[H", "\x1b]0;pwned\x07echo title", "printf 'a\rb' \x9b31m", "echo \u202eevil\u2066x\u2069",
        "\x1bP+q\x1b\\ dcs", "submit"]
EVIL_SHOWN = ["echo 7 > answer.txt # \\x1b[2J\\x1b[H", "\\x1b]0;pwned\\x07echo title", "printf 'a...",
              "echo \\u202eevil\\u2066x\\u2069", "\\x1bP+q\\x1b\\ dcs", "submit"]
UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff]")  # all but \n


def test_control_characters_in_actions_are_escaped_and_unicode_is_kept():
    assert live.short("\x1b[2Jls\x07") == "\\x1b[2Jls\\x07"
    assert live.short("a\rb") == "a..."  # a carriage return ends the first line
    assert live.short("x\x9b2J\x90") == "x\\x9b2J\\x90"  # C1 controls
    assert live.short("a\x85b") == live.short("a\u2028b") == "a..."  # NEL and LINE SEPARATOR end a line too
    assert live.short("\u202aa\u202bb\u202cc\u202dd\u202ee") == "\\u202aa\\u202bb\\u202cc\\u202dd\\u202ee"  # bidi
    assert live.short("\u2066f\u2067g\u2068h\u2069") == "\\u2066f\\u2067g\\u2068h\\u2069"
    assert live.short("\U000e0041tag \ufeffbom") == "\\U000e0041tag \\ufeffbom"
    assert live.short("héllo 日本語 👩‍🔬 ✓") == "héllo 日本語 👩‍🔬 ✓"  # ordinary text (the emoji's ZWJ too)
    assert live.short("\x1b" * 100) == "\\x1b" * 14 + "\\..."  # cut to the width after escaping
    assert live.line("t\x1b[2J", "a", 0, 1, 5, None, "ls") == "t\\x1b[2J a s0 step 1/5 best - | ls"
    assert text.clean(text.clean("\x1b\u202e\r")) == text.clean("\x1b\u202e\r") == "\\x1b\\u202e\\x0d"


def test_the_end_of_run_table_and_gate_lines_escape_agent_text():
    rows = terminal.lines({"tasks": {"t\x1b[2J": {"baseline": 1.0, "metric": "m\u202e", "direction": "max", "agents": {
        "a\x07": {"best_attempt": None, "best_submission": None, "passed": 0, "runs": 1,
                  "statuses": ["error\x1b]0;x\x07"]}}}},
        "aup": {"best_attempt": {"a\x07": 0.1}, "best_submission": {"a\x07": 0.1}}, "k": 1, "tau_max": 0.4})
    assert not any(UNSAFE.search(r) for r in rows)
    assert "error\\x1b]0;x\\x07" in rows[2] and rows[2].startswith("t\\x1b[2J  a\\x07")
    written = []
    tr = types.SimpleNamespace(write_sep=lambda *a, **k: None, write_line=lambda line, **k: written.append(line))
    terminal.gates([types.SimpleNamespace(passed=False, line="FAILED x: agent \x1b[2J")], tr)
    assert written == ["FAILED x: agent \\x1b[2J"]


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["in-process", "xdist"])
def test_an_agent_full_of_escape_sequences_prints_none_of_them(bench, xdist):
    (bench.path / "agents").mkdir()
    (bench.path / "agents" / "evil.yaml").write_text("policy: replay\ntrajectory: evil.jsonl\n")
    (bench.path / "agents" / "evil.jsonl").write_text("\n".join(json.dumps({"action": a}) for a in EVIL))
    bench.makeconftest("""
        class Crashing:
            def reset(self, task): pass
            def act(self, observation):
                if "nope" not in str(observation):  # first spoil the artefact: the reason is then in the verdict
                    return "echo nope > answer.txt; echo nope"
                raise RuntimeError("\\x1b[2J\\x1b]0;pwned\\x07\\u202egone\\x9b")

        def pytest_mlgym_policies(config):
            return {"crashing": "conftest:Crashing"}
    """)
    result = bench.runpytest("--agent=evil", "--agent=crashing", "-v", "-rA", "-p", "no:cacheprovider", *xdist)
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str() + result.stderr.str()
    assert not UNSAFE.search(out), [line for line in out.splitlines() if UNSAFE.search(line)]
    shown = [line.split(" | ", 1)[1] for line in result.stdout.lines if " evil s0 step " in line]
    assert shown == EVIL_SHOWN
    assert "RuntimeError: \\x1b[2J\\x1b]0;pwned\\x07\\u202egone\\x9b" in out  # the crash, in the failure message
    result.stdout.fnmatch_lines(["tiny*crashing*error*", "tiny*evil*submitted*"])  # the table
