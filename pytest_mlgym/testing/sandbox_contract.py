"""The sandbox contract, for any backend, with one import: subclass :class:`SandboxContract` in a
test module and name the backend (registered in ``pytest_mlgym.sandbox.BACKENDS`` or through the
``pytest_mlgym_sandboxes`` hook)::

    from pytest_mlgym.testing.sandbox_contract import SandboxContract

    class TestMySandbox(SandboxContract):
        backend = "mine"

It checks what the engine relies on: one persistent shell (``cd`` and variables persist), exit
codes, a timeout that kills the command and leaves a working shell, output capped with a marker,
files written, read, copied in and out and refused outside the workspace, a closed sandbox that
refuses work, and the lifecycle the engine calls (``check``, ``cleanup``, ``evaluator_engine``,
the declared attributes). Where the backend's ``check`` says it cannot run here, the tests skip
with its reason. (The shipped backends pass a longer suite too: ``tests/test_sandbox_contract.py``.)
"""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from ..sandbox import Sandbox, SandboxConfig, SandboxError, backend, create


class SandboxContract:
    backend: str = ""  # the backend's registered name
    config: SandboxConfig = SandboxConfig(memory_mb=1024, output_chars=2000)

    # -- fixtures ------------------------------------------------------------------------------------
    @pytest.fixture
    def backend_class(self) -> type[Sandbox]:
        assert self.backend, "name the backend: `backend = \"...\"` on the subclass"
        cls = backend(self.backend)
        try:
            cls.check(self.config)
        except SandboxError as e:
            pytest.skip(f"--sandbox {self.backend} cannot run here: {e}")
        return cls

    @pytest.fixture
    def workspace(self, tmp_path: Path) -> Path:
        ws = tmp_path / "workspace"
        ws.mkdir()
        (ws / "given.txt").write_text("given\n")
        return ws

    @pytest.fixture
    def sb(self, backend_class, workspace):
        sandbox = create(self.backend, workspace, self.config)
        yield sandbox
        sandbox.close()

    # -- the lifecycle the engine calls ----------------------------------------------------------------
    def test_it_is_a_sandbox_and_declares_what_the_engine_reads(self, sb):
        assert isinstance(sb, Sandbox)
        assert isinstance(sb.workdir, str) and sb.workdir
        assert sb.isolation is None or isinstance(sb.isolation, str)
        assert sb.host is None or isinstance(sb.host, str)
        assert isinstance(sb.files_local, bool)
        engine = sb.evaluator_engine()
        assert engine is None or (callable(engine.run_trusted) and callable(engine.start_code))

    def test_check_and_cleanup_can_be_called_for_any_session(self, backend_class):
        assert backend_class.check(self.config) is None
        for session in (f"contract-{uuid.uuid4().hex[:8]}", None):
            removed = backend_class.cleanup(session, self.config)
            assert isinstance(removed, int) and removed >= 0
        plan = backend_class.isolation_plan()
        assert plan.mode is None or isinstance(plan.mode, str)
        assert isinstance(backend_class.placement(self.config), str)
        assert isinstance(backend_class.links_readonly_data(), bool)

    # -- the shell ---------------------------------------------------------------------------------------
    def test_a_command_runs_and_gives_its_output_and_code(self, sb):
        res = sb.exec("cat given.txt; echo err >&2; exit 3", 30)
        assert res.returncode == 3 and not res.timed_out
        assert res.output.splitlines()[:2] == ["given", "err"]

    def test_the_shell_persists_between_commands(self, sb):
        sb.exec("mkdir -p sub && cd sub && export CONTRACT_VAR=kept", 30)
        res = sb.exec("echo $CONTRACT_VAR; basename $PWD", 30)
        assert res.returncode == 0 and res.output.split() == ["kept", "sub"]

    def test_a_command_that_runs_too_long_is_killed_and_the_shell_goes_on(self, sb):
        res = sb.exec("sleep 30", 1)
        assert res.timed_out and res.returncode is None
        assert "timed out" in res.output
        assert sb.exec("echo alive", 30).output.strip() == "alive"

    def test_output_is_capped_with_a_marker(self, sb):
        res = sb.exec("head -c 100000 /dev/zero | tr '\\0' x; echo; echo tail-end", 30)
        assert len(res.output) < self.config.output_chars + 200
        assert "truncated" in res.output and res.output.rstrip().endswith("tail-end")

    # -- files -------------------------------------------------------------------------------------------
    def test_files_written_by_the_harness_are_seen_by_the_shell_and_back(self, sb):
        sb.write_file("notes/from_harness.txt", b"hello")
        assert sb.exec("cat notes/from_harness.txt", 30).output == "hello"
        sb.exec("printf made > made.txt", 30)
        assert sb.read_file("made.txt") == b"made"
        with pytest.raises(SandboxError):
            sb.read_file("made.txt", max_bytes=2)

    def test_copy_in_and_copy_out(self, sb, tmp_path):
        src = tmp_path / "src"
        (src / "deep").mkdir(parents=True)
        (src / "deep" / "a.txt").write_text("a")
        sb.copy_in(src, "copied")
        assert sb.exec("cat copied/deep/a.txt", 30).output == "a"
        sb.exec("mkdir -p art && printf 1 > art/x && printf 2 > art/y", 30)
        sb.copy_out("art", tmp_path / "out")
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["x", "y"]
        sb.copy_out("art/x", tmp_path / "x")
        assert (tmp_path / "x").read_text() == "1"

    def test_paths_outside_the_workspace_are_refused(self, sb, tmp_path):
        for path in ("/etc/passwd", "../outside.txt"):
            with pytest.raises(SandboxError):
                sb.read_file(path)
        with pytest.raises(SandboxError):
            sb.write_file("../outside.txt", b"no")
        sb.exec("ln -s /etc/passwd leak", 30)
        with pytest.raises(SandboxError):
            sb.read_file("leak")
        with pytest.raises(SandboxError):
            sb.copy_out("missing-artefact", tmp_path / "missing")

    # -- the end -------------------------------------------------------------------------------------------
    def test_a_closed_sandbox_refuses_work_and_closes_twice(self, sb):
        sb.exec("sleep 300 &", 30)
        sb.close()
        with pytest.raises(SandboxError):
            sb.exec("echo still here", 5)
        sb.close()
