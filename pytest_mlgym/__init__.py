"""pytest-mlgym: a pytest plugin and benchmark for AI research agents.

Kept light on purpose: pytest imports this package in every run where the plugin is installed.
``import pytest_mlgym.env`` registers the Gymnasium environments (``mlgym/<task-id>``).
"""
__version__ = "0.1.0"
