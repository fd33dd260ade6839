"""Reusable checks for task authors and third parties (importable without pytest)."""
