"""Published MLGym-Bench figures (Best Attempt@4, Nathani et al., 2025), restated as data.

Used to check :mod:`pytest_mlgym.scoring` against the paper::

    python -c "import pytest_mlgym.scoring as s, pytest_mlgym.published as p; \
print({m: round(v, 3) for m, v in s.aup(p.SCORES, p.DIRECTIONS, p.BASELINES, tau_max=p.TAU_MAX).items()})"
"""
MODELS = ["Llama-3.1-405B", "GPT-4o", "Claude-3.5-Sonnet", "Gemini-1.5-Pro", "o1-preview"]
TABLE = [  # task, direction, baseline, then one score per model (None: no valid score)
    ("house price r2", "max", 0.880, 0.908, 0.895, 0.921, 0.914, 0.931),
    ("3-SAT time", "min", 16.158, 13.793, 13.676, 15.728, 14.360, 13.652),
    ("CIFAR-10", "max", 0.497, 0.548, 0.733, 0.895, 0.840, 0.857),
    ("Fashion-MNIST", "max", 0.783, 0.876, 0.927, 0.945, 0.916, 0.920),
    ("COCO BLEU", "max", 0.279, 0.294, 0.176, 0.298, 0.131, 0.135),
    ("FineWeb val loss", "min", 4.673, None, 4.361, 4.476, 4.166, 3.966),
    ("MNLI acc %", "max", 52.511, 77.748, 81.946, 83.036, 83.821, 83.627),
    ("Battle of Sexes", "max", 1.023, 1.261, 1.149, 1.442, 1.443, 1.444),
    ("Prisoner's Dilemma", "max", 2.372, 2.632, 2.600, 2.567, 2.630, 2.629),
    ("Blotto", "max", -0.248, 0.043, 0.047, 0.576, 0.249, 0.248),
    ("Breakout", "max", 48.817, 58.870, 0.000, 35.017, 71.389, 63.518),
    ("Meta Maze", "max", 15.734, 26.744, 7.823, 48.562, 27.859, 34.986),
    ("Mountain Car", "max", 33.794, 18.692, -215.776, 36.313, 92.513, 96.335),
]
SCORES = {row[0]: dict(zip(MODELS, row[3:])) for row in TABLE}
DIRECTIONS = {row[0]: row[1] for row in TABLE}
BASELINES = {row[0]: row[2] for row in TABLE}
TAU_MAX = 1.2
AUP = {"o1-preview": 1.150, "Claude-3.5-Sonnet": 1.142, "Gemini-1.5-Pro": 1.140,
       "Llama-3.1-405B": 1.015, "GPT-4o": 1.000, "baseline": 0.953}
