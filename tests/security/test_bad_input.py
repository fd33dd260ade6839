"""Bad input (issue 6): generated task.yaml files and artefacts never crash the session.

A broken task folder is a clean collection error (one line naming the file and, for a schema error,
the field); a broken artefact is an ``invalid`` score with a one-line reason, from the real trusted
evaluators run through :func:`pytest_mlgym.evaluation.run_evaluator`. No pickle ever executes.
"""
from __future__ import annotations

import copy
import math
import os
import pickle
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from pytest_mlgym.task import (
    MAX_LIMIT,
    Limits,
    Metric,
    SizeSpec,
    Task,
    TaskError,
    TaskSpec,
    load_task,
)
from pytest_mlgym.testing.artefacts import SPECIAL, Evil, cheap, scalars, score, values

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "tasks" / "tiny"
TASKS = ROOT / "tasks"
BASE_TEXT = (TINY / "task.yaml").read_text()
BASE = yaml.safe_load(BASE_TEXT)


# == 1. task.yaml: loads, or one TaskError line naming the file (and the field) ======================
paths_list = st.lists(st.sampled_from(["answer.txt", "knobs.py", "missing.txt", "", ".", "..", "/etc/hostname",
                                       "../task.yaml", "private/evaluate.py", "a\x00b", "a\nb"])
                      | st.text(max_size=8), max_size=3)
knob = st.fixed_dictionaries(
    {"name": st.sampled_from(["X", "ALPHA", "answer", "1bad", "", "a b", "X\n"]) | st.text(max_size=4),
     "file": st.sampled_from(["knobs.py", "answer.txt", "binary.py", "missing.py", "../task.yaml",
                              "/etc/hostname", "", "\x00", "sub/"]),
     "type": st.sampled_from(["int", "float", "choice", "bool", "str", ""]) | scalars},
    optional={"low": values, "high": values, "log": values, "choices": values, "fidelity": values,
              "extra": values})
LIMIT_FIELDS = list(Limits.model_fields)
PATHS = ([(f,) for f in TaskSpec.model_fields]
         + [("metric", "name"), ("metric", "direction"), ("sizes", "lite"), ("sizes", "full"), ("sizes", "medium"),
            ("sizes", "lite", "baseline"), ("sizes", "lite", "tolerance"), ("sizes", "full", "seconds")]
         + [("limits", f) for f in LIMIT_FIELDS])
limit_numbers = (st.integers(-10, 10) | st.integers(min_value=MAX_LIMIT - 10) | st.floats(allow_nan=True)
                 | st.integers(1, 400).map(lambda k: 10**k)
                 | st.sampled_from([0, -1, MAX_LIMIT, MAX_LIMIT + 1, float(MAX_LIMIT), MAX_LIMIT + 0.5, 2**64, 16,
                                    100]))


def field_values(path: tuple) -> st.SearchStrategy:
    extra = {("knobs",): st.lists(knob, max_size=3), ("starter_files",): paths_list,
             ("artefact",): paths_list.map(lambda p: "/".join(p)), ("sample_artefact",): st.sampled_from(
                 ["answer.txt", "missing", "/etc/hostname", "../tiny/task.yaml"])}.get(path, st.nothing())
    if path[0] == "limits":
        extra = extra | limit_numbers
    return values | st.sampled_from(SPECIAL) | extra


FIELDS_AT = {(): TaskSpec.model_fields, ("metric",): Metric.model_fields, ("limits",): Limits.model_fields,
             ("sizes", "lite"): SizeSpec.model_fields}
EXTRA_AT = list(FIELDS_AT)
unknown_key_op = st.tuples(st.sampled_from(EXTRA_AT), st.from_regex(r"[a-z][a-z_]{0,11}", fullmatch=True)).filter(
    lambda t: t[1] not in FIELDS_AT[t[0]]).flatmap(lambda t: st.tuples(st.just("set"), st.just((*t[0], t[1])), values))
ops = st.sampled_from(PATHS).flatmap(
    lambda p: st.just(("drop", p)) | st.tuples(st.just("set"), st.just(p), field_values(p))) | unknown_key_op
unicode_key_op = st.tuples(st.just("set"), st.tuples(st.sampled_from(EXTRA_AT), st.text(min_size=1, max_size=8))
                           .map(lambda t: (*t[0], t[1])), values)


def apply(doc: dict, op: tuple) -> None:
    kind, path = op[0], op[1]
    parent = doc
    for key in path[:-1]:
        if not isinstance(parent.get(key), dict):
            parent[key] = {}
        parent = parent[key]
    if kind == "drop":
        parent.pop(path[-1], None)
    else:
        parent[path[-1]] = op[2]


def fresh_task(tmp_path: Path, name: str = "tiny") -> Path:
    folder = Path(tempfile.mkdtemp(dir=tmp_path)) / name
    shutil.copytree(TINY, folder)
    (folder / "workspace" / "knobs.py").write_text("X = 1\nALPHA = 0.5\n")
    (folder / "workspace" / "binary.py").write_bytes(b"\xff\xfe\x00X = 1\n\x80")
    return folder


def load_or_message(folder: Path) -> str | None:
    """None when the folder loads; else the TaskError message, checked to be one line naming the file."""
    yml = folder / "task.yaml"
    try:
        task = load_task(folder)
    except TaskError as e:  # anything else propagates: a bug
        msg = str(e)
        assert msg.startswith(f"{yml}: ") and len(msg) > len(f"{yml}: "), msg
        assert len(msg.splitlines()) == 1 and msg.isprintable(), repr(msg)
        return msg
    assert isinstance(task, Task) and task.id == folder.name and task.path == folder.resolve()
    return None


def write_doc(folder: Path, doc) -> None:
    (folder / "task.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")


def test_the_unmutated_copy_loads(tmp_path):
    folder = fresh_task(tmp_path)
    write_doc(folder, copy.deepcopy(BASE))
    assert load_or_message(folder) is None


@cheap(300)
@given(mutations=st.lists(ops, min_size=1, max_size=3))
def test_mutated_task_yaml_loads_or_names_file_and_field(tmp_path, mutations):
    folder = fresh_task(tmp_path)
    doc = copy.deepcopy(BASE)
    for op in mutations:
        apply(doc, op)
    write_doc(folder, doc)
    msg = load_or_message(folder)
    if msg is not None and len(mutations) == 1 and ": cannot read:" not in msg:
        # a schema error from the one mutated field: the message names it (its top-level key at least)
        assert msg.startswith(f"{folder / 'task.yaml'}: {mutations[0][1][0]}"), (mutations, msg)


@cheap(100)
@given(mutations=st.lists(unicode_key_op | ops, min_size=1, max_size=4))
def test_unicode_keys_and_values_give_one_printable_line(tmp_path, mutations):
    folder = fresh_task(tmp_path)
    doc = copy.deepcopy(BASE)
    for op in mutations:
        apply(doc, op)
    write_doc(folder, doc)
    load_or_message(folder)


def test_a_key_with_a_newline_is_escaped_not_split(tmp_path):
    folder = fresh_task(tmp_path)
    write_doc(folder, {**BASE, "bad\nkey\x1b[2J\u2028": 1})
    msg = load_or_message(folder)
    assert msg == f"{folder / 'task.yaml'}: bad\\nkey\\x1b[2J\\u2028: Extra inputs are not permitted"


YAML_JUNK = ["!!python/object/apply:os.system ['touch {canary}']", "!!python/name:os.system", "&a", "*a", "*undefined",
             "%TAG ! tag:x:", "---", "...", "\t", "{", "}", "[", "? ", "<<: *x", "<<: 5", "!!binary Zm9v", "!!set {a}",
             "!!omap [a: 1]", "!!timestamp 2001-01-01", "~", '"\\ud800"', '"\\x00"', ": :", "- - -", "'unterminated",
             "\ufeff", "\x00", "\x85", "\u2028", "key: value: other", "id: tiny\nid: other", "metric: 5",
             "limits: {memory_mb: 99999999999999999999}", "evaluation_seed: " + "9" * 5000]


def splice(text: str, at: int, cut: int, insert: str) -> str:
    at = min(at, len(text))
    return text[:at] + insert + text[at + cut:]


raw_documents = st.one_of(
    st.binary(max_size=300),
    st.tuples(st.integers(0, len(BASE_TEXT)), st.integers(0, 40), st.text(max_size=30) | st.sampled_from(YAML_JUNK))
    .map(lambda t: splice(BASE_TEXT, *t)),
    st.lists(st.sampled_from(YAML_JUNK), min_size=1, max_size=3).map(lambda j: BASE_TEXT + "\n" + "\n".join(j) + "\n"),
    values.map(lambda v: yaml.safe_dump(v, allow_unicode=True, sort_keys=False)),
    st.integers(1, 3000).map(lambda n: "[" * n + "]" * n),
    st.integers(1, 3000).map(lambda n: "{a: " * n + "1" + "}" * n),
    st.integers(1, 40).map(lambda n: "a: &a0 [x, x]\n" + "".join(f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}]\n"
                                                                  for i in range(1, n))),
    st.integers(0, 6000).map(lambda n: BASE_TEXT.replace("evaluation_seed: 0", f"evaluation_seed: {'9' * n}")),
    st.sampled_from(["utf-16", "utf-8-sig", "utf-32", "latin-1", "cp500"]).map(
        lambda enc: (BASE_TEXT + "name: caf\u00e9\n").encode(enc)),
    st.sampled_from(list(TaskSpec.model_fields)).flatmap(  # duplicate keys: the last one wins
        lambda f: values.map(lambda v: BASE_TEXT + yaml.safe_dump({f: v}, allow_unicode=True))),
)


@cheap(300)
@given(document=raw_documents)
def test_garbage_task_yaml_gives_one_line_error(tmp_path, document):
    folder = fresh_task(tmp_path)
    canary = tmp_path / "canary"
    data = document if isinstance(document, bytes) else document.replace("{canary}", str(canary)).encode(
        "utf-8", "surrogatepass")
    (folder / "task.yaml").write_bytes(data)
    load_or_message(folder)
    assert not canary.exists(), "a YAML tag ran code"


FOLDER_BREAKS = ["no_yaml", "yaml_is_dir", "no_evaluator", "evaluator_is_dir", "no_workspace", "renamed",
                 "binary_knob_file", "missing_prepare"]


@cheap(60)
@given(breaks=st.sets(st.sampled_from(FOLDER_BREAKS), min_size=1),
       name=st.from_regex(r"[A-Za-z0-9_\-][A-Za-z0-9_. \-]{0,20}", fullmatch=True))
def test_broken_task_folders_give_one_line_error(tmp_path, breaks, name):
    folder = fresh_task(tmp_path)
    doc = {**BASE, "starter_files": ["answer.txt"]}
    if "binary_knob_file" in breaks:
        doc["knobs"] = [{"name": "X", "file": "binary.py", "type": "bool"}]
        (folder / "workspace" / "binary.py").write_bytes(b"\xff\xfe\x00 X = 1\n\x80")  # not at line start
    if "missing_prepare" in breaks:
        doc["prepare"] = "prepare.py"
    write_doc(folder, doc)
    if "renamed" in breaks and name not in ("tiny", "."):
        folder = folder.rename(folder.parent / name)
    if "no_yaml" in breaks:
        (folder / "task.yaml").unlink()
    if "yaml_is_dir" in breaks:
        (folder / "task.yaml").unlink(missing_ok=True)
        (folder / "task.yaml").mkdir()
    if "no_evaluator" in breaks or "evaluator_is_dir" in breaks:
        (folder / "private" / "evaluate.py").unlink()
        if "evaluator_is_dir" in breaks:
            (folder / "private" / "evaluate.py").mkdir()
    if "no_workspace" in breaks:
        shutil.rmtree(folder / "workspace")
    msg = load_or_message(folder)
    assert msg is not None, breaks  # every break is fatal


@cheap(40)
@given(limits=st.dictionaries(st.sampled_from(["memory_mb", "file_size_mb", "evaluation_s", "disk_mb"]),
                              st.integers(1, MAX_LIMIT) | st.floats(1e-6, MAX_LIMIT) | limit_numbers,
                              min_size=1, max_size=3)
       | st.dictionaries(st.sampled_from(LIMIT_FIELDS), limit_numbers | st.booleans(), min_size=1))
@example(limits={"memory_mb": MAX_LIMIT, "file_size_mb": MAX_LIMIT, "disk_mb": MAX_LIMIT, "evaluation_s": MAX_LIMIT})
@example(limits={"evaluation_s": 1e-9})
@example(limits={"memory_mb": 1})
def test_limits_that_load_never_crash_an_evaluation(tmp_path, limits):
    folder = fresh_task(tmp_path)
    write_doc(folder, {**BASE, "limits": {**BASE["limits"], **limits}})
    if load_or_message(folder) is not None:
        return
    task = load_task(folder)  # limits that load become rlimits and timeouts that must not overflow
    ev = score(task, task.prepare("lite"), lambda path, _: path.write_text("7"), handled=False)
    lim = task.spec.limits
    if lim.memory_mb >= 512 and lim.evaluation_s >= 10 and lim.file_size_mb >= 1:
        target = float((TINY / "private" / "target.txt").read_text())
        assert ev.score == 10 - abs(7 - target), (limits, ev)


# == 2. end to end: broken folders are errors naming their file; the good task still passes ===========
REQUIRED = [n for n, f in TaskSpec.model_fields.items() if f.is_required()]


def _broken(kind: str) -> st.SearchStrategy:
    """task.yaml contents (bytes) that never load, one way of breaking per kind."""
    def doc(mutate):
        return lambda v: yaml.safe_dump(mutate(copy.deepcopy(BASE), v), allow_unicode=True, sort_keys=False).encode()

    def setting(path):
        def mutate(d, v):
            apply(d, ("set", path, v))
            return d
        return mutate

    return {
        "bytes": st.binary(max_size=200).map(lambda b: b"\xff" + b),  # never UTF-8
        "not_mapping": values.filter(lambda v: not isinstance(v, dict)).map(
            lambda v: yaml.safe_dump(v, allow_unicode=True).encode()),
        "missing": st.sampled_from(REQUIRED).map(doc(lambda d, k: {f: v for f, v in d.items() if f != k})),
        "wrong_type": st.tuples(st.sampled_from(["id", "sizes", "limits", "metric", "knobs"]),
                                st.integers() | st.floats() | st.booleans()).map(
            doc(lambda d, kv: {**d, kv[0]: kv[1]})),
        "negative_limit": st.tuples(st.sampled_from(LIMIT_FIELDS), st.integers(max_value=-1) | st.floats(
            max_value=-1e-9)).map(doc(lambda d, kv: setting(("limits", kv[0]))(d, kv[1]))),
        "huge_limit": st.tuples(st.sampled_from(LIMIT_FIELDS), st.integers(10, 300)).map(
            doc(lambda d, kv: setting(("limits", kv[0]))(d, 10**kv[1]))),
        "unknown_key": st.text(min_size=1, max_size=10).filter(lambda k: k not in TaskSpec.model_fields).map(
            doc(lambda d, k: {**d, k: 1})),
        "duplicate_key": st.sampled_from(["metric", "sizes", "id"]).map(
            lambda k: (BASE_TEXT + f"\n{k}: [duplicate]\n").encode()),
        "invalid_yaml": st.sampled_from(["{", "[", "key: 'unterminated", '"\\q"', "*undefined", "\t- x",
                                         "!!python/object/apply:os.system ['true']", "a: b: c"]).map(
            lambda j: (BASE_TEXT + j + "\n").encode()),
        "deep": st.integers(600, 3000).map(lambda n: ("[" * n + "]" * n).encode()),
    }[kind]


BROKEN_KINDS = ["bytes", "not_mapping", "missing", "wrong_type", "negative_limit", "huge_limit", "unknown_key",
                "duplicate_key", "invalid_yaml", "deep"]
broken_tasks = st.permutations(BROKEN_KINDS).flatmap(lambda kinds: st.tuples(*[_broken(k) for k in kinds[:5]]))


@cheap(3, shrink=False)  # each example is a pytest run: no shrinking
@given(documents=broken_tasks)
def test_broken_task_folders_are_errors_naming_their_file_and_the_good_task_passes(bench, documents):
    for old in (bench.path / "tasks").glob("broken*"):
        shutil.rmtree(old)
    expected = []
    for i, data in enumerate(documents):
        folder = bench.path / "tasks" / f"broken{i}"
        shutil.copytree(TINY, folder)
        (folder / "task.yaml").write_bytes(data.replace(b"id: tiny", f"id: broken{i}".encode()))
        msg = load_or_message(folder)
        assert msg is not None, data[:200]
        expected.append(msg)
    result = bench.runpytest_subprocess("-rA", "-p", "no:cacheprovider")
    out = result.stdout.str()
    assert result.ret == 1, out  # tests failed: never an internal (3), usage (4) or interrupted (2) error
    result.assert_outcomes(passed=1, errors=5)
    for i, msg in enumerate(expected):
        assert f"ERROR at setup of test_agent_beats_baseline[broken{i}-baseline-s0]" in out, out
        assert msg in out, (msg, out)


# == 3. artefacts through the real trusted evaluators ================================================
@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return Path(os.environ.get("MLGYM_CACHE_DIR") or tmp_path_factory.mktemp("cache"))


def test_the_evil_pickle_does_run_code_when_unpickled(tmp_path):  # so its absence below means something
    pickle.loads(pickle.dumps(Evil(tmp_path / "ran")))
    assert (tmp_path / "ran").exists()


# -- the tiny task: a text file holding one number -------------------------------------------------
number_texts = (st.floats().map(repr) | st.integers().map(str)
                | st.sampled_from(["inf", "-inf", "nan", "1_0", "\u0667", "0x10", "1e999", " 7 \n", "\ufeff7"])
                | st.from_regex(r"\s*[-+]?\d{0,3}\.?\d{0,3}(e[-+]?\d{1,3})?\s*", fullmatch=True))


@cheap(25)
@given(data=st.binary(max_size=64) | (number_texts | st.text(max_size=20)).map(
    lambda t: t.encode("utf-8", "surrogatepass")))
def test_tiny_text_artefacts(data):
    task = load_task(TINY)
    target = float((TINY / "private" / "target.txt").read_text())
    ev = score(task, task.prepare("lite"), lambda path, _: path.write_bytes(data))
    try:
        guess = float(data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n").strip())
    except ValueError:
        guess = math.nan
    if math.isfinite(guess):
        assert ev.score == pytest.approx(10 - abs(guess - target)), (data, ev)
    else:
        assert not ev.valid and "one finite number" in ev.reason, (data, ev)
