"""Score answer.txt: 10 - |guess - target|; anything that is not one number is invalid."""
import json
import math
import sys
from pathlib import Path

target = float((Path(__file__).parent / "target.txt").read_text())
try:
    guess = float(Path(sys.argv[1]).read_text().strip())
    assert math.isfinite(guess)
except Exception as e:  # noqa: BLE001 - any bad artefact is reported, never raised
    print(json.dumps({"invalid": f"answer.txt must hold one finite number ({type(e).__name__})"}))
else:
    print(json.dumps({"score": 10 - abs(guess - target)}))
