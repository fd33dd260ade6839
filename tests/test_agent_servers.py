"""Model servers as a lab meets them: ``litellm:MODEL?api_base=...&<price>=...`` reaches an
OpenAI-compatible server on loopback through litellm's real client (a real HTTP server here, no
mocks), a server that does not answer stops the session at its start in one line, and a local
server's threads leave the workers their cores."""
from __future__ import annotations

import json
import os
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pytest_mlgym.agents import AgentError, resolve

ROOT = Path(__file__).resolve().parent.parent


class _OpenAI(BaseHTTPRequestHandler):
    """The two routes of an OpenAI-compatible server that the harness uses: it answers the tiny task
    (its hidden number is 7), then submits."""

    calls: list[dict] = []

    def log_message(self, *args):  # quiet
        pass

    def _send(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._send({"object": "list", "data": [{"id": "tiny-model", "object": "model"}]})

    def do_POST(self):
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).calls.append(request)
        command = "echo 7 > answer.txt" if len(type(self).calls) == 1 else "submit"
        self._send({"id": "c1", "object": "chat.completion", "created": 0, "model": request["model"],
                    "choices": [{"index": 0, "finish_reason": "stop", "message": {
                        "role": "assistant", "content": f"DISCUSSION\nNext step.\n\n```\n{command}\n```"}}],
                    "usage": {"prompt_tokens": 1000, "completion_tokens": 10, "total_tokens": 1010}})


@pytest.fixture
def server():
    _OpenAI.calls = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _OpenAI)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: nothing listens there


def test_litellm_model_takes_an_api_base_and_prices_in_its_name(bench, server):
    agent = (f"litellm:hosted_vllm/tiny-model?api_base={server}&input_cost_per_token=2e-6"
             f"&output_cost_per_token=0&tool_calling=false&max_steps=3")
    result = bench.runpytest_subprocess("tasks", f"--agent={agent}", "-p", "no:cacheprovider")
    assert result.ret == 0, result.stdout.str()[-3000:]  # it beat the baseline
    [rec] = [json.loads(line) for line in (bench.path / "reports" / "results.jsonl").read_text().splitlines()]
    assert rec["agent"] == agent and rec["status"] == "submitted" and rec["best_submission"] == 10.0
    assert [u["prompt_tokens"] for u in rec["usage"]] == [1000, 1000]
    assert rec["cost_usd"] == pytest.approx(2 * 1000 * 2e-6)  # the price given in the name
    assert len(_OpenAI.calls) == 2 and {c["model"] for c in _OpenAI.calls} == {"tiny-model"}


def test_an_api_base_that_does_not_answer_stops_the_session_at_its_start(bench):
    url = f"http://127.0.0.1:{_dead_port()}/v1"
    result = bench.runpytest_subprocess("tasks", f"--agent=litellm:hosted_vllm/m?api_base={url}", "-n", "2",
                                        "-p", "no:cacheprovider")
    assert result.ret == 4  # a usage error, before any episode
    [line] = [line for line in result.errlines if line.strip()]
    assert line.startswith(f"ERROR: --agent litellm:hosted_vllm/m?api_base={url}: api_base {url} does not answer "
                           f"(ConnectError: ") and line.endswith("start its server or fix the URL")
    assert not (bench.path / "reports" / "results.jsonl").exists()


@pytest.mark.parametrize("query, message", [
    ("api_key=sk-secret", "api_key cannot be given here (an API key in an agent's name would be in every report"),
    ("max_stepz=3", "bad parameters for policy 'llm': got an unexpected keyword argument 'max_stepz'"),
    ("max_steps", "write its parameters as ?key=value&key=value"),
])
def test_bad_model_parameters_are_one_line_errors(query, message):
    with pytest.raises(AgentError, match=re.escape(message)) as e:
        resolve(f"litellm:openai/gpt-4o-mini?{query}", []).check()
    assert "\n" not in str(e.value) and "sk-secret" not in str(e.value)


def test_query_values_are_typed():
    spec = resolve("litellm:hosted_vllm/m?temperature=0.5&tool_calling=false&max_steps=5&api_base=http://h:1/v1"
                   "&input_cost_per_token=3e-6", [])
    assert spec.params == {"model": "hosted_vllm/m", "temperature": 0.5, "tool_calling": False, "max_steps": 5,
                           "api_base": "http://h:1/v1", "input_cost_per_token": 3e-6, "name": spec.name}


def test_a_local_server_leaves_the_workers_their_cores():
    from pytest_mlgym.agents.serve import threads_for

    cores = len(os.sched_getaffinity(0))
    assert threads_for(0) == threads_for(1) == max(1, cores - 1)  # beside one process running episodes
    assert threads_for(cores) == threads_for(cores + 4) == 1  # as many workers as cores: one thread


def test_the_readme_s_own_provider_runs_as_written(bench):
    """README "Bringing your own model or provider": its conftest.py and agent file, verbatim."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Bringing your own model or provider"):]
    code = section.split("```python\n", 1)[1].split("```\n", 1)[0]
    agent = section.split("```yaml\n", 1)[1].split("```\n", 1)[0]
    (bench.path / "conftest.py").write_text(code)
    (bench.path / "agents").mkdir()
    (bench.path / "agents" / "mylab.yaml").write_text(agent)
    result = bench.runpytest_subprocess("tasks", "--agent=mylab", "-p", "no:cacheprovider")
    assert result.ret == 1, result.stdout.str()[-3000:]  # submitting the baseline does not beat it
    [rec] = [json.loads(line) for line in (bench.path / "reports" / "results.jsonl").read_text().splitlines()]
    assert (rec["agent"], rec["status"], rec["best_submission"]) == ("mylab", "submitted", 6.0)
    assert len(rec["usage"]) == 1  # one model call, through litellm
