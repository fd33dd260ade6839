"""Evaluators shared by tasks of one shape (:mod:`.gymnax`: MLP policies rolled out in a gymnax
environment), and in ``workspace/`` the agent-side files such tasks share (a PPO trainer), which a
task.yaml copies into its workspace with ``include:``."""
