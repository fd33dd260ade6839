"""Score answer.txt against the dev target (9) and the test target (2): 10 - |guess - target|."""
import math

from pytest_mlgym.sdk import Invalid, evaluator, readers

TARGETS = {"dev": 9.0, "test": 2.0}


def score(ctx: evaluator.Context) -> dict:
    try:
        guess = float(readers.text(ctx.artefact, 1000).strip())
    except ValueError:
        raise Invalid("answer.txt must hold one number") from None
    if not math.isfinite(guess):
        raise Invalid("answer.txt must hold one finite number")
    return {split: {"score": 10 - abs(guess - target)} for split, target in TARGETS.items()}


if __name__ == "__main__":
    evaluator.run(score)
