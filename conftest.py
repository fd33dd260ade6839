"""In-repo runs only: load the plugin when pytest-mlgym is not installed.

An installed pytest-mlgym registers itself through the ``pytest11`` entry point; loading it
twice would fail, so this file only steps in for a bare checkout (``PYTHONPATH=. pytest``).
"""
from importlib.metadata import entry_points

if not any(ep.value == "pytest_mlgym.plugin" for ep in entry_points(group="pytest11")):
    pytest_plugins = ["pytest_mlgym.plugin"]
