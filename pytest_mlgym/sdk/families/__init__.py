"""Evaluators shared by tasks of one shape."""
