"""``python -m pytest_mlgym import-mlgym MLGYM_CHECKOUT TASK_CONFIG [--out DIR]``.

Turns a task of the user's MLGym checkout (``configs/tasks/<name>.yaml``, its dataset configs
under ``configs/``, its files under ``data/<name>/``) into a task folder of ours, reading the
checkout at run time: nothing of MLGym ships with this package, and the folder it writes is the
user's. What it maps:

- ``starter_code`` -> ``workspace/`` (by file name, as MLGym copies them into its workspace), except
  helper modules the evaluate script imports that are not the agent's file (a game's opponent):
  those go to ``private/mlgym/`` only (MLGym's ``secret_files`` intent, unimplemented there);
- ``evaluation_paths[0]`` -> ``private/mlgym/`` (and a copy in the workspace, as in MLGym), scored
  by :mod:`pytest_mlgym.sdk.families.mlgym` with MLGym's calling conventions;
- a local dataset (``is_local``) -> ``private/mlgym/data/``, which ``prepare.py`` splits into the
  public data and the hidden answer files (those only the evaluate script reads);
- ``baseline_paths[0]`` -> ``baseline_command`` (none when it is the evaluate script: the workspace
  then holds the baseline artefact); ``baseline_scores`` -> the published baseline (a comment and,
  until ``measure`` runs, ``published: true``); ``training_timeout`` -> ``limits.step_s``;
- the metric and its direction: ``--metric``/``--direction``, else the checkout's
  ``mlgym/evaluation/utils.py`` TASKS table, else the first baseline score's name.

Supported entry points: ``CSVSubmissionTasks`` (a sealed split of the answer rows) and
``PythonSubmissionTasks`` (dev and test runs on disjoint secret seeds); others stop with one line.
"""
from __future__ import annotations

import ast
import json
import re
import secrets
import shutil
import sys
from pathlib import Path

import yaml

SUPPORTED = ("CSVSubmissionTasks", "PythonSubmissionTasks")
MAXIMIZE = ("r2", "accuracy", "score", "reward", "bleu", "f1", "auc", "return")
MINIMIZE = ("rmse", "mse", "mae", "loss", "time", "perplexity", "error", "bpb")
PREPARE = '''"""{id}: MLGym's {mlgym_id} data (private/mlgym/data/, copied from the user's checkout):
the answer files ({answers}) go to the evaluator only, everything else to the agent's data/."""
import json
import shutil
from pathlib import Path

from pytest_mlgym.sdk import prepare


def build(ctx: prepare.Context) -> str:
    source = ctx.task_dir / "private" / "mlgym" / "data"
    answers = json.loads((ctx.task_dir / "private" / "mlgym.json").read_text())["answers"]
    for item in sorted(source.iterdir()):
        target = (ctx.private if item.name in answers else ctx.public) / item.name
        (shutil.copytree if item.is_dir() else shutil.copyfile)(item, target)
    return f"{{len(answers)}} hidden answer file(s)"


if __name__ == "__main__":
    prepare.run(build, sizes=("lite",))
'''
EVALUATE = '''"""{id}: MLGym's {mlgym_id}, scored by its own {script} (private/mlgym/) through the SDK's adapter."""
from pytest_mlgym.sdk import evaluator
from pytest_mlgym.sdk.families import mlgym

if __name__ == "__main__":
    evaluator.run(mlgym.score)
'''


class MLGymImportError(Exception):
    """The task cannot be imported; one line."""


def task_config(checkout: Path, name: str) -> Path:
    """The task config: a path (absolute, or relative to the checkout or here) or a bare name."""
    for candidate in (Path(name), checkout / name, checkout / "configs" / "tasks" / f"{name}.yaml"):
        if candidate.is_file():
            return candidate.resolve()
    raise MLGymImportError(f"{name}: no such task config (looked in {checkout / 'configs' / 'tasks'})")


def snake(mlgym_id: str) -> str:
    """``battleOfSexes`` -> ``mlgym_battle_of_sexes`` (our ids are lower case; the prefix keeps them apart)."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", mlgym_id)
    return "mlgym_" + re.sub(r"[^a-z0-9]+", "_", words.lower()).strip("_")


def priority(checkout: Path, mlgym_id: str) -> tuple[str, str] | None:
    """(metric, max|min) from the checkout's evaluation TASKS table, read as a literal (never run)."""
    path = checkout / "mlgym" / "evaluation" / "utils.py"
    try:
        tree = ast.parse(path.read_text())
    except (OSError, SyntaxError, ValueError):
        return None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "TASKS" for t in node.targets):
            try:
                entry = ast.literal_eval(node.value).get(mlgym_id) or {}
            except ValueError:
                return None
            if "priority_metric" in entry:
                return entry["priority_metric"], "min" if entry.get("metric_direction") == "minimize" else "max"
    return None


def direction_of(metric: str) -> str | None:
    low = metric.lower()
    if any(w in low for w in MINIMIZE):
        return "min"
    return "max" if any(w in low for w in MAXIMIZE) else None


def _literals(source: str) -> set[str]:
    """File names mentioned by a script's string literals (the last part of each path)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    return {Path(n.value).name for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and n.value.strip() and "\n" not in n.value}


def _imports(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    return names | {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}


class Plan:
    """What the import reads from the checkout and decides, before anything is written."""

    def __init__(self, checkout: Path, config: Path, *, task_id=None, metric=None, direction=None,
                 artefact=None, answers=None):
        self.checkout, self.config = checkout.resolve(), config
        try:
            self.cfg = yaml.safe_load(config.read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise MLGymImportError(f"{config}: cannot read: {' '.join(str(e).split())}") from None
        for key in ("id", "name", "description", "evaluation_paths"):
            if not self.cfg.get(key):
                raise MLGymImportError(f"{config}: {key}: missing (an MLGym task config needs it)")
        self.mlgym_id = str(self.cfg["id"])
        self.id = task_id or snake(self.mlgym_id)
        self.entrypoint = self.cfg.get("task_entrypoint", "CSVSubmissionTasks")
        if self.entrypoint not in SUPPORTED:
            raise MLGymImportError(f"{config}: task_entrypoint {self.entrypoint}: not supported yet "
                                   f"(supported: {', '.join(SUPPORTED)})")
        self.starters = [self.checkout / p for p in self.cfg.get("starter_code") or []]
        for p in self.starters:
            if not p.exists():
                raise MLGymImportError(f"{config}: starter_code: {p} does not exist")
        self.evaluate = Path(self.cfg["evaluation_paths"][0]).name
        by_name = {p.name: p for p in self.starters}
        if self.evaluate not in by_name:
            raise MLGymImportError(f"{config}: evaluation_paths: {self.evaluate} is not among the starter_code files")
        self.eval_source = by_name[self.evaluate].read_text()
        self.datasets = [self._dataset(p) for p in self.cfg.get("dataset_configs") or []]
        self.metric, self.direction = self._metric(metric, direction)
        self.published = (self.cfg.get("baseline_scores") or [{}])[0].get(self.metric)
        baseline = [Path(p).name for p in self.cfg.get("baseline_paths") or []]
        self.baseline_command = f"python {baseline[0]}" if baseline and baseline[0] != self.evaluate else None
        self.helpers: list[str] = []
        self.answers: list[str] = []
        if self.entrypoint == "PythonSubmissionTasks":
            self.artefact = artefact or self._agent_module()
            imported = _imports(self.eval_source)
            self.helpers = [p.name for p in self.starters if p.suffix == ".py" and p.stem in imported
                            and p.name not in (self.artefact, self.evaluate)]
            self.args: list[str] = []
        else:
            self.artefact = artefact or "submission.csv"
            self.answers = answers or self._answers()
            self.args = ["--submission_file", "{artefact}"]

    def _dataset(self, rel: str) -> dict:
        path = self.checkout / "configs" / rel
        try:
            ds = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise MLGymImportError(f"dataset config {path}: cannot read: {' '.join(str(e).split())}") from None
        if not ds.get("is_local"):
            raise MLGymImportError(f"{path}: data_path {ds.get('data_path')!r} is not a local dataset (is_local: "
                                   "true): only local datasets are imported")
        ds["folder"] = self.checkout / ds["data_path"]
        if not ds["folder"].is_dir():
            helpers = sorted(ds["folder"].parent.glob("_helpers/*.py"))
            hint = (f"; MLGym makes it with {', '.join(h.name for h in helpers)} in {helpers[0].parent}"
                    if helpers else "")
            raise MLGymImportError(f"{ds['folder']} does not exist: make the dataset first (MLGym keeps "
                                   f"data/**/data out of git){hint}")
        return ds

    def _metric(self, metric, direction) -> tuple[str, str]:
        found = priority(self.checkout, self.mlgym_id)
        scores = (self.cfg.get("baseline_scores") or [{}])[0]
        metric = metric or (found[0] if found else next(iter(scores), None))
        if not metric:
            raise MLGymImportError(f"{self.config}: no baseline_scores and no TASKS entry: give --metric NAME")
        direction = direction or (found[1] if found and found[0] == metric else direction_of(metric))
        if direction is None:
            raise MLGymImportError(f"metric {metric!r}: direction unknown: give --direction max|min")
        return metric, direction

    def _agent_module(self) -> str:
        imported = _imports(self.eval_source)
        mine = [p.name for p in self.starters if p.suffix == ".py" and p.stem in imported
                and p.name in str(self.cfg["description"])]
        if len(mine) != 1:
            raise MLGymImportError(f"cannot tell the agent's file among {mine or 'the imported modules'}: "
                                   "give --artefact FILE")
        return mine[0]

    def _answers(self) -> list[str]:
        data = sorted({p.name for ds in self.datasets for p in ds["folder"].iterdir()})
        others = set().union(*(_literals(p.read_text()) for p in self.starters
                               if p.suffix == ".py" and p.name != self.evaluate))
        found = [n for n in data if n in _literals(self.eval_source) and n not in others]
        if not found:
            raise MLGymImportError("cannot tell which data files hold the answers: give --answers NAME "
                                   "(a file of the dataset that only the evaluate script reads)")
        return found


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(str, lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", s, style="|" if "\n" in s
                                                                else None))


def write(plan: Plan, out: Path) -> Path:
    folder = out / plan.id
    if folder.exists():
        raise MLGymImportError(f"{folder} already exists")
    private, workspace = folder / "private", folder / "workspace"
    (private / "mlgym").mkdir(parents=True)
    workspace.mkdir()
    for p in plan.starters:
        hidden = p.name in plan.helpers
        for target in ([private / "mlgym"] if hidden else [workspace]) + (
                [private / "mlgym"] if p.name == plan.evaluate else []):
            (shutil.copytree if p.is_dir() else shutil.copyfile)(p, target / p.name)
    for ds in plan.datasets:
        shutil.copytree(ds["folder"], private / "mlgym" / "data", dirs_exist_ok=True)
    (private / "secret").write_text(secrets.token_hex(32) + "\n")
    (private / "mlgym.json").write_text(json.dumps({
        "mlgym_id": plan.mlgym_id, "entrypoint": plan.entrypoint, "evaluate": plan.evaluate,
        "helpers": plan.helpers, "args": plan.args, "answers": plan.answers, "metric": plan.metric,
        "budget_s": 120}, indent=1) + "\n")
    (private / "evaluate.py").write_text(EVALUATE.format(id=plan.id, mlgym_id=plan.mlgym_id, script=plan.evaluate))
    if plan.datasets:
        (folder / "prepare.py").write_text(PREPARE.format(id=plan.id, mlgym_id=plan.mlgym_id,
                                                          answers=", ".join(plan.answers) or "none"))
    sample = _sample(plan, workspace) if plan.entrypoint == "CSVSubmissionTasks" else None
    (folder / "task.yaml").write_text(_task_yaml(plan, sample, workspace))
    return folder


def _sample(plan: Plan, workspace: Path) -> str:
    """A valid, poor CSV artefact: the answers' ids, and each other column the first training value
    of a public column of that name (else 0): the hidden answers give only their ids and header."""
    import csv

    source = next(ds["folder"] / plan.answers[0] for ds in plan.datasets if (ds["folder"] / plan.answers[0]).exists())
    with open(source, newline="") as f:
        rows = list(csv.reader(f))
    header, first = rows[0], {}
    for ds in plan.datasets:
        for table in sorted(ds["folder"].glob("train*.csv")):
            with open(table, newline="") as f:
                head, row = next(csv.reader(f)), next(csv.reader(f))
            first.update({h: v for h, v in zip(head, row) if h in header and h not in first})
    name = "sample_" + plan.artefact
    with open(workspace / name, "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows([header] + [[r[0]] + [first.get(h, "0") for h in header[1:]]
                                                                 for r in rows[1:] if r])
    return name


def _task_yaml(plan: Plan, sample: str | None, workspace: Path) -> str:
    docs = "".join(f"{str(ds.get('name', '')).upper()}:\n{ds.get('description', '')}\n\n" for ds in plan.datasets)
    description = str(plan.cfg["description"]).replace("{dataset_docs}", docs).rstrip() + (
        "\n\n(Imported from MLGym by pytest-mlgym: `validate` scores a dev split; the final score is on a"
        " sealed test split.)\n")
    step = int(plan.cfg.get("training_timeout") or 1800)
    baseline = float(plan.published) if isinstance(plan.published, (int, float)) else 0.0
    imports = set().union(*(_imports(p.read_text()) for p in plan.starters if p.suffix == ".py"))
    local = {p.stem for p in plan.starters}
    requirements = sorted({"sklearn": "scikit-learn"}.get(m, m) for m in imports
                          if m not in sys.stdlib_module_names and m not in local)
    spec = {
        "id": plan.id, "name": str(plan.cfg["name"]), "family": plan.mlgym_id, "description": description,
        "metric": {"name": plan.metric, "direction": plan.direction},
        "sizes": {"lite": {"baseline": baseline, "tolerance": 1e-3 * max(1.0, abs(baseline)), "published": True}},
        "limits": {"step_s": step, "episode_s": max(3600, step), "evaluation_s": 300, "memory_mb": 4096},
        "artefact": plan.artefact, **({"sample_artefact": sample} if sample else {}),
        "starter_files": sorted(p.name for p in workspace.iterdir() if p.is_file()),
        "baseline_command": plan.baseline_command, "reference_command": None,
        "prepare": "prepare.py" if plan.datasets else None, "data_dir": "data", "evaluation_seed": 0,
        "requirements": requirements,
    }
    scores = json.dumps((plan.cfg.get("baseline_scores") or [None])[0])
    head = (f"# Imported by `python -m pytest_mlgym import-mlgym` from MLGym's {plan.config.name} in\n"
            f"# {plan.checkout} (a copy of the user's files; none of it ships with pytest-mlgym).\n"
            f"# MLGym's published baseline_scores: {scores}\n"
            "# sizes.lite: that figure (published: true) until `python -m pytest_mlgym measure .` records the\n"
            "# baseline measured here (test split, dev split, wall time); the tolerance is a guess:\n"
            "# `measure --runs 3` suggests one from the spread.\n")
    return head + yaml.dump(spec, Dumper=_Dumper, sort_keys=False, width=110, allow_unicode=True)


def add_parser(sub) -> None:
    p = sub.add_parser("import-mlgym", help="make a task folder from a task of an MLGym checkout")
    p.add_argument("checkout", type=Path, help="the MLGym checkout (holds configs/ and data/)")
    p.add_argument("config", help="configs/tasks/<name>.yaml (a path, or the bare name)")
    p.add_argument("--out", type=Path, default=Path("tasks"), help="the folder of task folders (default: tasks)")
    p.add_argument("--id", default=None, help="our task id (default: mlgym_<snake_case of MLGym's id>)")
    p.add_argument("--metric", default=None, help="the metric key of the evaluate script's JSON")
    p.add_argument("--direction", choices=("max", "min"), default=None)
    p.add_argument("--artefact", default=None, help="the agent's file (Python-submission tasks)")
    p.add_argument("--answers", action="append", default=None, help="a dataset file only the evaluator gets")
    p.add_argument("--no-measure", action="store_true", help="keep MLGym's published baseline; do not run ours")


def main(args) -> int:
    from . import measure

    try:
        plan = Plan(args.checkout, task_config(args.checkout, args.config), task_id=args.id, metric=args.metric,
                    direction=args.direction, artefact=args.artefact, answers=args.answers)
        folder = write(plan, args.out)
    except MLGymImportError as e:
        print(f"import-mlgym: {e}")
        return 1
    print(f"import-mlgym: wrote {folder} ({plan.entrypoint}; metric {plan.metric} ({plan.direction}); artefact "
          f"{plan.artefact}; hidden: {', '.join(plan.helpers + plan.answers) or 'nothing'})")
    if not args.no_measure and not measure.measure_new(folder, "import-mlgym"):
        return 1
    print(f"next: python -m pytest_mlgym check-task {folder}")
    return 0
