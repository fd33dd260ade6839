"""Score an image_captioning submission: corpus BLEU-4 against the hidden references, per split.

BLEU is computed here, never by agent code: ``sacrebleu.corpus_bleu`` with its defaults (13a
tokenizer, BLEU-4, exponential smoothing, brevity penalty over the corpus) plus lowercase=True,
every reference caption of an image used (COCO images have 5-7), on a 0-1 scale (sacrebleu's
score / 100) like MLGym's published 0.279.

Splits: the test images are split by image id with ``ctx.row_splits`` (a keyed hash of the id:
about 20% dev, 80% test, fixed for the task, unknowable to the agent); each split is its own
corpus (its own brevity penalty). ``validate`` shows the dev BLEU; the test BLEU is recorded.
"""
import json

from pytest_mlgym.sdk import Invalid, evaluator, readers

MAX_BYTES = 20 << 20  # 5,000 captions of <= 200 characters is ~1 MB
MAX_CAPTION_CHARS = 200
NOT_CAPTIONS = ("nan", "none", "null")


def captions(path, ids: list[str]) -> list[str]:
    """One caption per id, in the order of ``ids``; Invalid with a one-line reason otherwise."""
    table = readers.csv_table(path, id_column="id", columns={"id": str, "caption": str}, ids=ids, max_bytes=MAX_BYTES)
    out = []
    for rid, cap in zip(ids, table["caption"]):
        cap = " ".join(cap.split())
        if not cap:
            raise Invalid(f"empty caption for id {rid!r}")
        if cap.lower() in NOT_CAPTIONS:
            raise Invalid(f"caption for id {rid!r} is {cap!r}, not a caption")
        if len(cap) > MAX_CAPTION_CHARS:
            raise Invalid(f"caption for id {rid!r} has {len(cap)} characters (max {MAX_CAPTION_CHARS})")
        out.append(cap)
    return out


def bleu(hyps: list[str], refs: list[list[str]]) -> dict:
    import sacrebleu

    # sacrebleu wants reference STREAMS: stream k holds every image's k-th reference (None if it has fewer)
    streams = [[r[k] if k < len(r) else None for r in refs] for k in range(max(map(len, refs)))]
    res = sacrebleu.corpus_bleu(hyps, streams, lowercase=True)
    return {"bleu": round(res.score / 100.0, 6), "bp": round(res.bp, 4),
            "precisions": [round(p / 100.0, 4) for p in res.precisions], "images": len(hyps)}


def score(ctx: evaluator.Context) -> dict:
    refs = json.loads(ctx.private("test_references.json").read_text(encoding="utf-8"))  # {id: [captions]}
    ids = sorted(refs)
    hyps = captions(ctx.artefact, ids)
    return {split: bleu([h for h, m in zip(hyps, mask) if m], [refs[i] for i, m in zip(ids, mask) if m])
            for split, mask in ctx.row_splits(ids).items() if mask.any()}


if __name__ == "__main__":
    evaluator.run(score)
