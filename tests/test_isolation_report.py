"""Isolation, visible and enforceable: --mlgym-min-isolation, the weak-isolation warning (header, end
of run, pytest warning) and the isolation in summary.json, report.html and the JUnit suite, through
real inner pytest runs (MLGYM_ISOLATION forces a weak mode in the inner run's environment)."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from test_report_html import Dom

from pytest_mlgym.report import html, summary, trust
from pytest_mlgym.results import RunRecord
from pytest_mlgym.sandbox import isolation

XDIST = ("-n", "2", "-p", "no:cacheprovider")
WARNING = "WARNING: isolation none is weaker than bwrap (the best of --sandbox local): agents can read hidden answers*"


@pytest.fixture
def project(bench, monkeypatch, request):
    """The bench, with the isolation probe forgotten before and after (the inner run is in this process)."""
    monkeypatch.delenv("MLGYM_ISOLATION", raising=False)
    isolation.available.cache_clear()
    request.addfinalizer(isolation.available.cache_clear)
    return bench


@pytest.fixture
def weak(project, monkeypatch):
    monkeypatch.setenv("MLGYM_ISOLATION", "none")
    return project


@pytest.fixture
def strong(project):
    if isolation.available() != "bwrap":
        pytest.skip("bubblewrap does not work here (install it: apt-get install bubblewrap; run as root)")
    return project


def errors(result) -> list[str]:
    return [line for line in result.stderr.lines if line.strip()]


def page(pytester) -> Dom:
    return Dom((pytester.path / "reports" / "report.html").read_text(encoding="utf-8")).root


def suite_properties(path) -> dict[str, str]:
    return {p.get("name"): p.get("value") for p in ET.parse(path).getroot().find("testsuite").find("properties")}


# -- --mlgym-min-isolation ------------------------------------------------------------------------
@pytest.mark.parametrize("xdist", [(), XDIST], ids=["in-process", "xdist"])
def test_a_weaker_sandbox_than_required_stops_the_run_in_one_line(weak, xdist):
    result = weak.runpytest("--mlgym-min-isolation=bwrap", *xdist)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert errors(result) == ["ERROR: --mlgym-min-isolation bwrap: this session's sandbox isolation is none, below the "
                              "required bwrap; MLGYM_ISOLATION=none forces it: unset it (this machine gives bwrap)"]
    assert not (weak.path / "reports" / "results.jsonl").exists()  # nothing ran


def test_the_refusal_says_how_to_get_the_level():
    line = trust.refusal(trust.info("local", "unshare", required="bwrap", machine_best="unshare"), "bwrap")
    assert line == ("--mlgym-min-isolation bwrap: this session's sandbox isolation is unshare, below the required bwrap; "
                    "to get bwrap: install bubblewrap (or run as root where user namespaces are off), or use --sandbox docker")
    assert trust.refusal(trust.info("local", "unshare"), "unshare") is None  # enough: the level itself
    assert trust.refusal(trust.info("docker", "docker"), "bwrap") is None  # docker counts as the top level
    assert "is not known" in trust.refusal(trust.info("vm", "vm"), "none")  # a plugin's backend: no rank, refused


@pytest.mark.parametrize("xdist", [(), XDIST], ids=["in-process", "xdist"])
def test_enough_isolation_runs_without_a_warning_and_says_the_requirement(strong, xdist):
    junit = strong.path / "junit.xml"
    strong.makepyfile(test_worker="""
        def test_every_process_has_the_controllers_decision(mlgym):
            assert (mlgym.isolation["mode"], mlgym.isolation["required"]) == ("bwrap", "bwrap")
    """)
    result = strong.runpytest("--mlgym-min-isolation=bwrap", f"--junitxml={junit}", "tasks", "test_worker.py", *xdist)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["mlgym: * sandbox: local, isolation: bwrap [[]bubblewrap: *[]] (required: bwrap or "
                                 "better)*"])
    out = result.stdout.str()
    assert "WARNING: isolation" not in out and "WEAK ISOLATION" not in out and "IsolationWarning" not in out
    s = json.loads((strong.path / "reports" / "summary.json").read_text())
    assert {k: s["isolation"][k] for k in ("backend", "mode", "best", "weaker", "required", "forced")} == {
        "backend": "local", "mode": "bwrap", "best": "bwrap", "weaker": False, "required": "bwrap", "forced": None}
    assert s["isolation"]["description"] == isolation.describe("bwrap")
    assert s["tasks"]["tiny"]["agents"]["baseline"]["isolation"] == ["bwrap"]
    dom = page(strong)
    para = dom.find("p", id="isolation")
    assert para.attrs["class"] == "isolation" and "Isolation: bwrap (sandbox local)" in para.text()
    assert "Required: bwrap or better" in para.text()
    (run,) = dom.find_all("details", cls="run")
    assert run.attrs["data-isolation"] == "bwrap" and "weak" not in run.attrs["class"].split()
    assert "isolation bwrap" in run.find_all("summary")[0].text()  # the run's heading
    props = suite_properties(junit)
    assert props["mlgym.isolation"] == "bwrap" and "mlgym.isolation.warning" not in props


def force(monkeypatch, mode: str) -> None:
    """MLGYM_ISOLATION for the next inner run (in this process: the probe's cache is cleared)."""
    monkeypatch.setenv("MLGYM_ISOLATION", mode)
    isolation.available.cache_clear()


def test_a_level_from_the_ini_file_and_bad_values_are_one_line_errors(project, monkeypatch):
    project.makeini("[pytest]\nmlgym_min_isolation = unshare\n")
    force(monkeypatch, "unshare")
    result = project.runpytest("-p", "no:cacheprovider", "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK  # unshare is enough for unshare (and warns: weaker than bwrap)
    force(monkeypatch, "none")
    result = project.runpytest("-p", "no:cacheprovider", "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR and len(errors(result)) == 1
    assert errors(result)[0].startswith("ERROR: --mlgym-min-isolation unshare: this session's sandbox isolation is none")
    for args, message in [(["--mlgym-min-isolation=strong"], "ERROR: --mlgym-min-isolation: unknown level 'strong'; "
                                                             "choose from none, unshare, bwrap (weakest first)"),
                          (["--mlgym-min-isolation", "docker"], "ERROR: --mlgym-min-isolation: unknown level 'docker'*")]:
        result = project.runpytest("-p", "no:cacheprovider", *args)
        assert result.ret == pytest.ExitCode.USAGE_ERROR and len(errors(result)) == 1, result.stderr.str()
        result.stderr.fnmatch_lines([message])
    force(monkeypatch, "sometimes")
    result = project.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert errors(result) == ["ERROR: MLGYM_ISOLATION=sometimes: choose from bwrap, unshare, none"]


# -- the warning, and the isolation in every report -----------------------------------------------
def test_a_weaker_mode_warns_at_the_start_and_the_end_and_every_report_says_so(weak):
    junit = weak.path / "junit.xml"
    result = weak.runpytest(f"--junitxml={junit}", *XDIST)
    result.assert_outcomes(passed=1, warnings=1)
    lines = result.stdout.lines
    start = next(i for i, l in enumerate(lines) if l.startswith("WARNING: isolation none"))
    end = next(i for i, l in enumerate(lines) if "mlgym: WEAK ISOLATION" in l)
    results = next(i for i, l in enumerate(lines) if "mlgym results" in l)
    assert start < next(i for i, l in enumerate(lines) if "workers [1 item]" in l) < results < end  # header, end
    assert lines[end + 1] == lines[start] and lines[start].endswith(
        "MLGYM_ISOLATION=none forces it: unset it (this machine gives bwrap)")
    assert isolation.describe("none") in lines[start]  # what the weaker mode does not guarantee
    result.stdout.fnmatch_lines(["*warnings summary*", "*IsolationWarning: isolation none is weaker than bwrap*"])

    s = json.loads((weak.path / "reports" / "summary.json").read_text())
    assert {k: s["isolation"][k] for k in ("backend", "mode", "best", "weaker", "required", "forced")} == {
        "backend": "local", "mode": "none", "best": "bwrap", "weaker": True, "required": None, "forced": "none"}
    assert s["tasks"]["tiny"]["agents"]["baseline"]["isolation"] == ["none"]

    dom = page(weak)
    para = dom.find("p", id="isolation")
    assert para.attrs["class"].split() == ["isolation", "weak"] and para.text() == lines[start]
    assert [p for p in dom.find_all("p")].index(para) == 1  # near the top: right under the title's line
    (run,) = dom.find_all("details", cls="run")
    assert run.attrs["data-isolation"] == "none" and "weak" in run.attrs["class"].split()

    props = suite_properties(junit)
    assert props["mlgym.isolation"] == "none" and props["mlgym.isolation.warning"] == lines[start]


def test_the_warning_is_written_at_the_start_even_with_q_and_minus_w_error_stops_the_run(weak):
    result = weak.runpytest("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, warnings=1)
    assert result.stdout.lines[0].startswith("WARNING: isolation none is weaker than bwrap")
    result = weak.runpytest("-q", "-p", "no:cacheprovider", "-W", "error::UserWarning")
    assert result.ret == pytest.ExitCode.USAGE_ERROR and len(errors(result)) == 1
    assert errors(result)[0].endswith("(-W turned this warning into an error)")


def test_an_offline_report_shows_the_weakest_isolation_of_its_runs(tmp_path):
    base = dict(session="s", task="tiny", size="lite", agent="a", policy="replay", metric="score", direction="max",
                baseline=6.0, tolerance=0.0, status="submitted", best_attempt=7.0, best_submission=7.0, finished_at=1.0)
    records = [RunRecord(**base, seed=0, isolation="bwrap"), RunRecord(**base, seed=1, isolation="unshare"),
               RunRecord(**{**base, "agent": "d"}, seed=0, sandbox="docker", isolation="docker")]
    s = summary.build(records).as_dict()
    assert (s["isolation"]["mode"], s["isolation"]["weaker"], s["isolation"]["required"]) == ("unshare", True, None)
    assert s["tasks"]["tiny"]["agents"]["a"]["isolation"] == ["bwrap", "unshare"]
    dom = Dom(html.write(records, tmp_path / "report.html").read_text()).root
    assert dom.find("p", id="isolation").text().startswith("WARNING: isolation unshare is weaker than bwrap")
    weak = {r.attrs["data-isolation"]: "weak" in r.attrs["class"].split() for r in dom.find_all("details", cls="run")}
    assert weak == {"bwrap": False, "unshare": True, "docker": False}
    assert summary.build([RunRecord(**base, seed=0, sandbox="docker", isolation="docker")]).as_dict()["isolation"][
        "weaker"] is False
