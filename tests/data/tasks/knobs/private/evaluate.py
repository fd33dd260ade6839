"""Score result.json: its loss on both splits (a toy: the evaluator trusts it, which a real task never does)."""
import json
import math

from pytest_mlgym.sdk import Invalid, evaluator, readers


def score(ctx: evaluator.Context) -> dict:
    try:
        loss = float(json.loads(readers.text(ctx.artefact, 10_000))["loss"])
    except (ValueError, KeyError, TypeError) as e:
        raise Invalid(f"result.json must hold a finite loss ({type(e).__name__})") from None
    if not math.isfinite(loss):
        raise Invalid("result.json must hold a finite loss (not finite)")
    return {"dev": {"loss": loss}, "test": {"loss": loss}}


if __name__ == "__main__":
    evaluator.run(score)
