"""The docker backend's scheduler, without an engine: the least busy engine first and, among equally
busy ones, the one this session started the fewest episodes on, so episodes alternate over idle
engines whatever other sessions run there."""
from __future__ import annotations

import uuid

from pytest_mlgym.sandbox import DockerOptions
from pytest_mlgym.sandbox.docker import engine as engines


class FakeEngine:
    def __init__(self, running: int):
        self.running = running
        self.containers = self

    def list(self, **filters):
        return [object()] * self.running


def placed(monkeypatch, busy: dict[str, int], n: int) -> list[str]:
    fakes = {url: FakeEngine(k) for url, k in busy.items()}
    monkeypatch.setattr(engines, "_client", lambda url=None: fakes[url])
    session = f"schedule-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("MLGYM_SESSION_ID", session)
    out = []
    try:
        for _ in range(n):
            with engines.placement(DockerOptions(hosts=tuple(busy))) as engine:
                assert engine.client is fakes[engine.url]
                out.append(engine.url)
    finally:
        engines.Path(f"{engines.SCHEDULE}-{session}.json").unlink(missing_ok=True)
    return out


def test_episodes_alternate_over_equally_busy_engines(monkeypatch):
    assert placed(monkeypatch, {"unix:///a.sock": 0, "unix:///b.sock": 0}, 4) == [
        "unix:///a.sock", "unix:///b.sock"] * 2
    assert placed(monkeypatch, {"unix:///a.sock": 3, "unix:///b.sock": 3}, 3) == [
        "unix:///a.sock", "unix:///b.sock", "unix:///a.sock"]


def test_the_least_busy_engine_comes_first(monkeypatch):
    assert placed(monkeypatch, {"unix:///a.sock": 2, "unix:///b.sock": 0}, 3) == ["unix:///b.sock"] * 3
