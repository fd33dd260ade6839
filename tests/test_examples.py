"""The examples run and do what they say."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_rl_example_learns_to_prefer_the_better_edit_from_the_env_reward(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "rl_battle_of_sexes.py"), "--quick"],
                          cwd=tmp_path, check=False, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    curve = [float(x) for x in re.findall(r"^iteration \d+: mean return ([\d.]+)", proc.stdout, re.MULTILINE)]
    p_best = [float(x) for x in re.findall(r"p\(best edit\) ([\d.]+)", proc.stdout)]
    assert len(curve) == 3, proc.stdout
    # returns are normalised: 0 is the baseline strategy, 1 the reference; always playing 0 scores about 1.05
    assert all(0 <= r < 1.2 for r in curve), proc.stdout
    assert curve[-1] > curve[0], f"the learning curve did not improve:\n{proc.stdout}"
    assert "preferred edit: always play 0" in proc.stdout, proc.stdout
    assert p_best[-1] > p_best[0] > 1 / 5, proc.stdout
