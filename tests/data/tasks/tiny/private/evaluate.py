"""Score answer.txt: 10 - |guess - target| on both splits (one hidden target); not one number: invalid."""
import math
from pathlib import Path

from pytest_mlgym.sdk import Invalid, evaluator, readers


def score(ctx: evaluator.Context) -> dict:
    target = float((ctx.task_dir / "private" / "target.txt").read_text())
    try:
        guess = float(readers.text(ctx.artefact, 1000).strip())
    except (ValueError, Invalid) as e:  # not text, not one number
        raise Invalid(f"answer.txt must hold one finite number ({e})") from None
    if not math.isfinite(guess):
        raise Invalid("answer.txt must hold one finite number (not finite)")
    return {split: {"score": 10 - abs(guess - target)} for split in ("dev", "test")}


if __name__ == "__main__":
    evaluator.run(score)
