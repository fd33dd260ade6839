"""The pytest plugin end to end, through real inner pytest runs (pytester)."""
from __future__ import annotations

import json
import shutil
import sys
import xml.etree.ElementTree as ET

import pytest

from conftest import DATA, ROOT


def records(pytester) -> list[dict]:
    return [json.loads(l) for l in (pytester.path / "reports" / "results.jsonl").read_text().splitlines()]


def test_one_test_per_task_agent_seed_with_readable_ids(bench):
    result = bench.runpytest("--collect-only", "-q", "--seeds", "2")
    result.stdout.fnmatch_lines(["tasks/test_bench.py::test_agent_beats_baseline[[]tiny-baseline-s0[]]",
                                 "tasks/test_bench.py::test_agent_beats_baseline[[]tiny-baseline-s1[]]"])
    assert result.ret == 0


def test_baseline_agent_passes_and_reports_are_written(bench):
    result = bench.runpytest("--agent=baseline", f"--junitxml={bench.path / 'junit.xml'}")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*mlgym results*", "tiny*baseline*6*6*6 (score, max)*1/1*submitted*",
                                 "AUP@1*", "*(recorded baseline)*"])
    (rec,) = records(bench)
    assert (rec["task"], rec["agent"], rec["seed"], rec["status"]) == ("tiny", "baseline", 0, "submitted")
    assert rec["scores"][-1] == {**rec["scores"][-1], "kind": "submit", "score": 6.0}
    assert rec["versions"]["pytest_mlgym"] and rec["wall_s"] > 0
    summary = json.loads((bench.path / "reports" / "summary.json").read_text())
    assert summary["tasks"]["tiny"]["agents"]["baseline"]["best_submission"] == 6.0
    assert set(summary["aup"]["best_attempt"]) == {"baseline", "(recorded baseline)"}
    props = {p.get("name"): p.get("value") for p in ET.parse(bench.path / "junit.xml").iter("property")}
    assert props["metric"] == "score" and props["baseline"] == "6.0" and props["status"] == "submitted"
    assert props["best_submission"] == "6.0" and props["passed"] == "True"
    # the baseline on tiny (baseline 6, reference 10): normalised 0, one seed, so no interval
    assert props["stats.iqm.baseline"] == props["stats.mean.baseline"] == "0.000"
    assert summary["stats"]["agents"]["baseline"]["iqm"]["best_submission"]["value"] == 0.0
    assert rec["reference"] == 10.0 and rec["normalised_best_submission"] == 0.0


def test_failing_agent_fails_its_test_and_is_still_recorded(bench):
    traj = bench.path / "worse.jsonl"
    traj.write_text(json.dumps({"action": "echo 1 > answer.txt"}) + "\n")
    result = bench.runpytest(f"--agent=replay:{traj}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*tiny: replay:* does not beat the baseline: score = 4 vs 6*"])
    assert records(bench)[0]["best_submission"] == 4.0


def test_better_agent_passes_and_beats_the_baseline_in_aup(bench):
    (bench.path / "agents").mkdir()
    (bench.path / "agents" / "oracle.yaml").write_text("policy: replay\ntrajectory: oracle.jsonl\n")
    (bench.path / "agents" / "oracle.jsonl").write_text(
        "\n".join(json.dumps({"action": a}) for a in ["echo 9 > answer.txt", "validate", "echo 7 > answer.txt",
                                                      "submit"]))
    result = bench.runpytest("--agent=oracle", "--agent=baseline", "--seeds=2")
    result.assert_outcomes(passed=4)
    page = (bench.path / "reports" / "report.html").read_text()  # written at the end of every run
    assert "oracle" in page and "Performance profiles" in page and "data:image/png;base64," in page
    assert "echo 9 &gt; answer.txt" in page  # the trajectories, escaped
    summary = json.loads((bench.path / "reports" / "summary.json").read_text())
    row = summary["tasks"]["tiny"]["agents"]["oracle"]
    assert (row["best_attempt"], row["best_submission"]) == (10.0, 10.0)
    aup = summary["aup"]["best_submission"]
    assert aup["oracle"] > aup["baseline"] == aup["(recorded baseline)"]


@pytest.mark.parametrize("args, message", [
    (["--agent=nope"], "ERROR: --agent: unknown agent 'nope'; valid agents: baseline, replay, search (or replay:PATH, litellm:MODEL*"),
    (["--task-size=huge"], "ERROR: --task-size: unknown size 'huge'; valid sizes: lite, full"),
    (["--sandbox=vm"], "ERROR: --sandbox: unknown sandbox 'vm'; valid: local, docker"),
    (["--seeds=0"], "ERROR: --seeds: expected a whole number >= 1, got '0'"),
    (["--agent=replay"], "ERROR: --agent: agent 'replay' needs a trajectory*"),
])
def test_bad_options_are_one_line_usage_errors(bench, args, message):
    result = bench.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert len([l for l in result.stderr.lines if l.strip()]) == 1
    assert not (bench.path / "reports" / "results.jsonl").exists()


def test_options_are_settable_in_the_ini_file(bench):
    bench.makeini("[pytest]\nmlgym_agents = nope\n")
    result = bench.runpytest()
    result.stderr.fnmatch_lines(["ERROR: --agent: unknown agent 'nope'*"])
    bench.makeini("[pytest]\nmlgym_seeds = 3\nmlgym_report_dir = out\n")
    result = bench.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["*tiny-baseline-s2*"])
    bench.runpytest().assert_outcomes(passed=3)
    assert (bench.path / "out" / "results.jsonl").exists()


def test_broken_task_yaml_names_file_and_field_and_the_others_still_run(bench):
    broken = bench.path / "tasks" / "broken"
    shutil.copytree(DATA / "tasks" / "tiny", broken)
    yml = broken / "task.yaml"
    yml.write_text(yml.read_text().replace("id: tiny", "id: broken").replace("direction: max", "direction: up"))
    result = bench.runpytest("-rA")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at setup of test_agent_beats_baseline[[]broken-baseline-s0[]]*",
                                 f"{yml}: metric.direction: Input should be 'max' or 'min'",
                                 "*mlgym results*", "tiny *baseline*1/1*submitted*"])


def test_k_selects_a_task_and_each_task_has_its_own_fixture(bench):
    shutil.copytree(DATA / "tasks" / "tiny", bench.path / "tasks" / "other")
    yml = bench.path / "tasks" / "other" / "task.yaml"
    yml.write_text(yml.read_text().replace("id: tiny", "id: other"))
    bench.makepyfile(test_fixture="""
        def test_tiny_fixture(tiny):
            assert tiny.task.id == "tiny"
            obs, reward, terminated, truncated, info = tiny.step("cat answer.txt")
            assert obs.strip() == "3" and not terminated
    """)
    result = bench.runpytest("-k", "other", "-q")
    result.assert_outcomes(passed=1, deselected=2)
    bench.runpytest("test_fixture.py").assert_outcomes(passed=1)


def test_tasks_with_slow_or_untimed_baselines_are_marked_slow(bench):
    result = bench.runpytest("--collect-only", "-q", "-m", "not slow")
    result.stdout.fnmatch_lines(["no tests collected (1 deselected)*"])  # no `seconds`: untimed
    yml = bench.path / "tasks" / "tiny" / "task.yaml"
    text = yml.read_text()
    assert "dev_reference: 10.0}" in text
    yml.write_text(text.replace("dev_reference: 10.0}", "dev_reference: 10.0, seconds: 0.5}"))
    bench.runpytest("-m", "not slow").assert_outcomes(passed=1)


def test_missing_size_is_skipped_with_a_reason(bench):
    yml = bench.path / "tasks" / "tiny" / "task.yaml"
    yml.write_text(yml.read_text().replace("  full: {baseline: 6.0, tolerance: 0.0}\n", ""))
    result = bench.runpytest("--task-size=full", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*task tiny has no 'full' size yet*"])


def test_missing_full_data_skips_with_what_to_put_where(bench):
    (bench.path / "tasks" / "tiny" / "prepare.py").write_text(
        "import sys\nif sys.argv[sys.argv.index('--size') + 1] == 'full':\n"
        "    print('put the CIFAR-10 python batches in $MLGYM_DATA_DIR/tiny/cifar-10-batches-py/', file=sys.stderr)\n"
        "    sys.exit(3)\n")
    yml = bench.path / "tasks" / "tiny" / "task.yaml"
    yml.write_text(yml.read_text().replace("prepare: null", "prepare: prepare.py"))
    result = bench.runpytest("--task-size=full", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*tiny (full): put the CIFAR-10 python batches in $MLGYM_DATA_DIR/tiny/cifar-10-batches-py/"])
    bench.runpytest().assert_outcomes(passed=1)  # lite needs no data


def test_agent_crash_is_recorded_with_a_one_line_reason(bench):
    bench.makeconftest("""
        class Crashing:
            def reset(self, task): pass
            def act(self, observation):
                raise RuntimeError("model went away")

        def pytest_mlgym_policies(config):
            return {"crashing": "conftest:Crashing"}
    """)
    result = bench.runpytest("--agent=crashing")
    result.assert_outcomes(failed=1)
    (rec,) = records(bench)
    assert rec["status"] == "error" and "agent crashed: RuntimeError: model went away" in rec["reason"]
    assert rec["best_submission"] == 6.0  # the artefact in the workspace was still scored
    from pytest_mlgym import agents
    assert "crashing" not in agents.POLICIES  # a plugin's policies last as long as its run


def test_xdist_workers_share_one_results_store_and_the_controller_summarises(bench):
    junit = bench.path / "junit.xml"
    bench.runpytest("--seeds=4", "-n", "2", "-p", "no:cacheprovider", f"--junitxml={junit}").assert_outcomes(passed=4)
    props = [{p.get("name"): p.get("value") for p in case.iter("property")} for case in ET.parse(junit).iter("testcase")]
    assert sorted(p["seed"] for p in props) == ["0", "1", "2", "3"] and {p["status"] for p in props} == {"submitted"}
    recs = records(bench)
    assert sorted(r["seed"] for r in recs) == [0, 1, 2, 3] and len({r["session"] for r in recs}) == 1
    summary = json.loads((bench.path / "reports" / "summary.json").read_text())
    assert summary["k"] == 4 and summary["tasks"]["tiny"]["agents"]["baseline"]["runs"] == 4


@pytest.mark.parametrize("paths, heavy", [
    ([ROOT / "tasks", ROOT / "tests"], ("torch", "jax", "litellm")),
    ([ROOT / "tasks"], ("torch", "jax", "litellm", "gymnasium", "pandas", "sklearn")),  # the benchmark alone
])
def test_collection_imports_no_heavy_modules(pytester, paths, heavy):
    code = (f"import sys, pytest; rc = pytest.main(['--collect-only', '-q', '-p', 'no:cacheprovider', "
            f"{', '.join(repr(str(p)) for p in paths)}]);"
            f"print('HEAVY', sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r})), rc)")
    result = pytester.run(sys.executable, "-c", code)
    result.stdout.fnmatch_lines(["HEAVY [[][]] 0"])


@pytest.mark.parametrize("args, workers, shares", [
    (["--gpus=0,1,2,3"], 2, [("0", "2"), ("1", "3")]),
    (["--gpus=0,1,2,3", "--gpus-per-run=1"], 2, [("0",), ("1",)]),
    (["--gpus=4,5"], 1, [("4", "5")]),
])
def test_gpus_are_split_across_workers_without_overlap(args, workers, shares, pytestconfig):
    from pytest_mlgym.config import gpu_share

    got = []
    for k in range(workers):
        config = pytest.Config.fromdictargs({}, args + ["-p", "no:cacheprovider"])
        got.append(gpu_share(config, {"workercount": workers, "workerid": f"gw{k}"}))
    assert got == shares
    flat = [g for share in got for g in share]
    assert len(flat) == len(set(flat))


def test_more_gpus_per_run_than_there_are_is_a_usage_error(bench):
    result = bench.runpytest("--gpus=0,1", "--gpus-per-run=2", "-n", "2", "-p", "no:cacheprovider")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["ERROR: --gpus-per-run 2: 2 worker(s) x 2 GPU(s) is more than the 2 GPU(s) given (0,1)*"])


def test_a_sandbox_sees_only_its_gpus(tiny, tmp_path):
    from pytest_mlgym.env import MLGymEnv

    env = MLGymEnv(tiny, cache_dir=tmp_path, gpus=("1", "3"))
    env.reset(seed=0)
    try:
        assert env.step("echo $CUDA_VISIBLE_DEVICES")[0].strip() == "1,3"
    finally:
        env.close()
