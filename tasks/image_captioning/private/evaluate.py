"""Score an image_captioning submission: corpus BLEU-4 against the hidden test references.

Usage: python evaluate.py ARTEFACT   (env: MLGYM_PRIVATE_DATA = folder holding test_references.json)

BLEU is computed here, never by agent code: sacrebleu.corpus_bleu with its defaults (13a
tokenizer, BLEU-4, exponential smoothing, brevity penalty over the corpus) plus lowercase=True,
every reference caption of an image used (COCO images have 5-7), and reported on a 0-1 scale
(sacrebleu's score / 100) like MLGym's published 0.279.

Last stdout line is one JSON object: {"bleu": ..., "bp": ...} or {"invalid": "reason"}.
Exit status is 0 for any artefact, however broken; only missing references (an engine set-up
error, not the agent's fault) exit non-zero.
"""
import csv
import io
import json
import math
import os
import sys

MAX_BYTES = 20 * 1024 * 1024  # 5,000 captions of <= 200 characters is ~1 MB
MAX_CAPTION_CHARS = 200


class Invalid(Exception):
    pass


def load_references():
    private = os.environ.get("MLGYM_PRIVATE_DATA")
    path = os.path.join(private or "", "test_references.json")
    if not private or not os.path.isfile(path):
        print(f"evaluate.py: references not found (MLGYM_PRIVATE_DATA={private!r})", file=sys.stderr)
        sys.exit(2)
    with open(path, encoding="utf-8") as f:
        return json.load(f)  # {id: [captions]}


def load_submission(path, refs):
    """{id: caption} for exactly the test ids, or Invalid with a one-line reason."""
    if os.path.islink(path):
        raise Invalid(f"{path} is a symbolic link; write a regular file")
    if not os.path.exists(path):
        raise Invalid(f"{path} not found")
    if not os.path.isfile(path):
        raise Invalid(f"{path} is not a regular file")
    if os.path.getsize(path) > MAX_BYTES:
        raise Invalid(f"{path} is larger than {MAX_BYTES} bytes")
    with open(path, "rb") as f:
        raw = f.read()
    if b"\x00" in raw:
        raise Invalid("not a text CSV file (contains NUL bytes)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise Invalid(f"not UTF-8 text: {e}")
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as e:
        raise Invalid(f"unreadable CSV: {e}")
    if not rows:
        raise Invalid("empty file; need a header id,caption and one row per test image")
    header = [c.strip().lower() for c in rows[0]]
    if header != ["id", "caption"]:
        raise Invalid(f"header must be id,caption, got {','.join(rows[0])[:80]!r}")
    body = [r for r in rows[1:] if r]  # tolerate blank lines
    if len(body) != len(refs):
        raise Invalid(f"expected {len(refs)} rows (one per test image), got {len(body)}")
    sub = {}
    for n, row in enumerate(body, start=2):
        if len(row) != 2:
            raise Invalid(f"row {n} has {len(row)} fields, expected 2 (quote captions that contain commas)")
        rid, cap = row[0].strip(), " ".join(row[1].split())
        if rid not in refs:
            raise Invalid(f"row {n}: unknown id {rid[:40]!r}")
        if rid in sub:
            raise Invalid(f"row {n}: duplicate id {rid[:40]!r}")
        if not cap:
            raise Invalid(f"row {n}: empty caption for id {rid!r}")
        if cap.lower() in ("nan", "none", "null"):
            raise Invalid(f"row {n}: caption for id {rid!r} is {cap!r}, not a caption")
        if len(cap) > MAX_CAPTION_CHARS:
            raise Invalid(f"row {n}: caption for id {rid!r} has {len(cap)} characters (max {MAX_CAPTION_CHARS})")
        sub[rid] = cap
    return sub  # same size as refs, no unknown or duplicate ids: every test id is present


def main():
    if len(sys.argv) != 2:
        print(json.dumps({"invalid": "usage: evaluate.py ARTEFACT"}))
        return
    refs = load_references()
    try:
        import sacrebleu

        sub = load_submission(sys.argv[1], refs)
        ids = sorted(refs)
        hyps = [sub[i] for i in ids]
        # sacrebleu wants reference STREAMS: stream k holds every image's k-th reference (None if it has fewer)
        k_max = max(len(refs[i]) for i in ids)
        streams = [[refs[i][k] if k < len(refs[i]) else None for i in ids] for k in range(k_max)]
        res = sacrebleu.corpus_bleu(hyps, streams, lowercase=True)
        bleu = res.score / 100.0
        if not math.isfinite(bleu):
            raise Invalid("BLEU is not finite")
        print(json.dumps({"bleu": round(bleu, 6), "bp": round(res.bp, 4),
                          "precisions": [round(p / 100.0, 4) for p in res.precisions]}))
    except Invalid as e:
        print(json.dumps({"invalid": " ".join(str(e).split())}))
    except Exception as e:  # never crash on a bad artefact
        print(json.dumps({"invalid": " ".join(f"could not score: {type(e).__name__}: {e}".split())[:300]}))


if __name__ == "__main__":
    main()
