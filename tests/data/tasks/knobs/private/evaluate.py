"""Score result.json: its loss (a toy: the evaluator trusts it, which a real task never does)."""
import json
import math
import sys

try:
    loss = float(json.load(open(sys.argv[1]))["loss"])
    assert math.isfinite(loss)
except Exception as e:  # noqa: BLE001 - any bad artefact is reported, never raised
    print(json.dumps({"invalid": f"result.json must hold a finite loss ({type(e).__name__})"}))
else:
    print(json.dumps({"loss": loss}))
