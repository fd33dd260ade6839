"""How pytest reports a test whose run the infrastructure cut short (status ``infra_error``: the model
provider failed, not the agent): an **error**, never a pass or a fail. The plugin registers this
module (every process: the worker that ran the test fails its call; the controller counts it) and
:class:`InfraJUnit` (the controller, for ``--junitxml``)."""
from __future__ import annotations

import pytest

from ..session import INFRA_RECORD


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """The call of a test whose episode ended in ``infra_error`` fails with one line (whatever the
    test asserted: a validate may have beaten the baseline before the provider failed);
    ``pytest_report_teststatus`` and the JUnit reporter then show it as an error."""
    report = yield
    if report.when == "call" and (rec := item.stash.get(INFRA_RECORD, None)) is not None:
        from ..results import InfraFailure, infra_message

        message = infra_message(rec)
        try:
            raise InfraFailure(message)
        except InfraFailure:
            longrepr = pytest.ExceptionInfo.from_current().getrepr(style="value")
        if longrepr.reprcrash is not None:  # the short summary's line: the message alone
            longrepr.reprcrash.message = message
        report.outcome = "failed"
        report.longrepr = longrepr
    return report


def _infra_failed(report: pytest.TestReport) -> bool:
    """A call report failed by ``pytest_runtest_makereport`` for an infrastructure failure (also on
    the xdist controller, which gets the report with its user properties)."""
    return report.when == "call" and report.failed and any(k == "infra" for k, _ in report.user_properties)


@pytest.hookimpl(tryfirst=True)
def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config):
    if _infra_failed(report):  # counted in "N errors", shown as E / ERROR
        return "error", "E", ("ERROR", {"red": True})
    return None


class InfraJUnit:
    """Controller, with ``--junitxml``: the test of an infrastructure failure is an ``<error>``, not a
    ``<failure>`` (pytest's reporter writes a failure for any failed call; this runs after it)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not _infra_failed(report):
            return
        try:
            from _pytest.junitxml import xml_key
        except ImportError:  # pragma: no cover - pytest moved it
            return
        if (xml := self.config.stash.get(xml_key, None)) is None:
            return
        for node in xml.node_reporter(report).nodes:
            if node.tag == "failure":
                node.tag = "error"
