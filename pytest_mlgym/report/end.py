"""The end of a run, on the controller: the summary of this session's records (``summary.json``,
``report.html``), the gates (``--mlgym-fail-under-aup``, ``--mlgym-compare``/``--mlgym-max-regression``),
the JUnit suite properties and the terminal's tables. The plugin's ``pytest_sessionfinish`` and
``pytest_terminal_summary`` hooks call :func:`finish` and :func:`terminal_summary`."""
from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import pytest

from . import aggregate, gates, noise, summary, terminal

if TYPE_CHECKING:
    from ..results import RunRecord
    from ..session import MLGymSession


def finish(session: pytest.Session, s: MLGymSession, records: list[RunRecord], exitstatus: int) -> None:
    """Summarise ``records`` (this session's), check the gates where the run completed, write the reports."""
    if records:
        s.summary = summary.build(records, isolation=s.isolation)
        if s.interrupted:
            s.summary.interrupted = summary.Interrupted(**s.interrupted)
        s.summary.paired = noise.pairwise(records, s.options.confidence or 0.95, frozenset(s.summary.infra.unscored))
    checked = exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) and not session.config.option.collectonly
    if checked:
        _gates(session, s, records)
    if s.summary:
        summary.write(s.summary, s.options.report_dir / "summary.json")
        _html(s, records)
    _junit_properties(session.config, s)


def _html(s: MLGymSession, records: list[RunRecord]) -> None:
    """``report.html`` beside the summary; a report that cannot be drawn costs the run nothing else."""
    from . import html  # matplotlib and Jinja2: only when there is a report to draw

    try:
        html.write(records, s.options.report_dir / "report.html", summary=s.summary)
    except Exception as e:  # e.g. a broken matplotlib install
        warnings.warn(f"mlgym: report.html not written: {type(e).__name__}: {e}", stacklevel=2)


def _gates(session: pytest.Session, s: MLGymSession, records: list[RunRecord]) -> None:
    """Compare with the stored run and check the gates; a failed gate makes the exit status 1. The
    comparisons' intervals are at ``--mlgym-confidence``, else 95%."""
    confidence = s.options.confidence or 0.95
    if s.stored is not None:
        stored_session, old = s.stored
        s.comparison = {"stored": str(s.options.compare), "stored_session": stored_session, "stored_runs": len(old),
                        **gates.compare(old, records, confidence=confidence)}
        if s.options.max_regression is not None and s.options.confidence is not None:
            s.gates.append(noise.max_regression(s.comparison, s.options.max_regression, str(s.options.compare),
                                                s.options.confidence))
        elif s.options.max_regression is not None:
            s.gates.append(gates.max_regression(s.comparison, s.options.max_regression, str(s.options.compare)))
    if s.options.fail_under_aup is not None:
        named = {a.name for a in s.options.agents} if s.options.explicit_agents else set()
        agents = sorted({r.agent for r in records} | named)
        s.gates.insert(0, gates.fail_under(s.summary, agents, s.options.fail_under_aup)
                       if s.options.confidence is None else
                       noise.fail_under(s.summary, records, agents, s.options.fail_under_aup, s.options.confidence))
    if s.summary:
        if s.comparison is not None:
            s.summary.comparison = s.comparison
        if s.gates:
            s.summary.gates = [g.as_dict() for g in s.gates]
    if any(not g.passed for g in s.gates) and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _junit_properties(config: pytest.Config, s: MLGymSession) -> None:
    """``--junitxml``: the suite's AUP and the gates' results as testsuite properties (the controller's
    LogXML writes the file after this hook, which runs first)."""
    try:
        from _pytest.junitxml import xml_key
    except ImportError:  # pragma: no cover - pytest moved it
        return
    xml = config.stash.get(xml_key, None)
    if xml is None:
        return
    xml.add_global_property("mlgym.session", s.id)
    if s.isolation:
        xml.add_global_property("mlgym.isolation", s.isolation["mode"])
        if warning := s.isolation_warning():
            xml.add_global_property("mlgym.isolation.warning", warning)
    if s.summary:
        xml.add_global_property("aup.k", s.summary.k)
        xml.add_global_property("aup.tau_max", s.summary.tau_max)
        for kind, values in s.summary.aup.items():
            for method, value in sorted(values.items()):
                xml.add_global_property(f"aup.{kind}.{method}", f"{value:.6f}")
        infra = s.summary.infra  # runs left out of AUP: the provider failed, not the agent
        xml.add_global_property("infra.runs", infra.runs)
        for agent, classes in sorted(infra.agents.items()):
            xml.add_global_property(f"infra.{agent}", ", ".join(f"{c}={n}" for c, n in sorted(classes.items())))
        for agent, tasks in sorted(infra.unscored.items()):  # no AUP for it
            xml.add_global_property(f"aup.unscored.{agent}", ",".join(tasks))
        for prop, text in aggregate.junit_properties(s.summary.stats).items():  # stats.iqm.<agent>, stats.mean.<agent>
            xml.add_global_property(prop, text)
    noise.junit(xml.add_global_property, s.comparison, s.summary.paired if s.summary else None)
    for gate in s.gates:
        xml.add_global_property(f"gate.{gate.name.removeprefix('--mlgym-').replace('-', '_')}", gate.line)


def terminal_summary(terminalreporter, s: MLGymSession) -> None:
    """The controller's tables after pytest's own summary: AUP, comparison, gates, interruption, isolation."""
    if s.summary:
        terminal.render(s.summary, terminalreporter, s.options.report_dir)
    if s.comparison is not None:
        terminal.comparison(s.comparison, terminalreporter)
    if paired_lines := noise.lines(s.comparison, s.summary.paired if s.summary else None):
        terminal.section("mlgym paired comparisons (intervals over seeds)", paired_lines, terminalreporter)
    if s.gates:
        terminal.gates(s.gates, terminalreporter)
    gated = s.options.fail_under_aup is not None or s.options.max_regression is not None
    if s.interrupted and gated:
        terminalreporter.write_line("mlgym gates: not checked, the run was interrupted")
    if s.interrupted:
        terminal.interrupted(s.interrupted, terminalreporter)
    if warning := s.isolation_warning():  # last: not scrolled away by the tables
        terminal.isolation(warning, terminalreporter)
