"""Build the data for the image_captioning task.

Usage: python prepare.py --size lite|full --out OUT   (pytest_mlgym.sdk.prepare)

lite: GENERATES 4,000 32x32 RGB scenes of 1-3 coloured shapes (numpy only, seed SEED) with 5
      template captions each (synonyms, varied word order and sentence forms). 3,000 train /
      500 validation / 500 test.
full: MS-COCO 2014 captions read from $MLGYM_DATA_DIR/image_captioning/ in the original layout
      (annotations/captions_{train,val}2014.json, train2014/*.jpg, val2014/*.jpg). val2014 is
      shuffled with seed SEED: 5,000 images become the hidden test set, 5,000 the validation set,
      the rest ("restval") joins train2014 as training data (Karpathy-style sizes; not the
      Karpathy image lists, which are not part of the COCO release).

Writes
  OUT/public/{train,validation}.json   [{"id", "captions": [...]} (+ "file" in full)], in image order
  OUT/public/test.json                 [{"id"} (+ "file" in full)]
  OUT/public/{split}_images.npy        lite only: uint8 [N, 32, 32, 3], row i = record i
  OUT/public/images/{split}/*.jpg      full only: the original JPEGs (hard-linked when possible)
  OUT/private/test_references.json     {"id": [reference captions]} for the test images
                                       (the evaluator splits them into dev and test by image id)
Same bytes on every run.
"""
import json
import os
import shutil

import numpy as np

from pytest_mlgym.sdk import prepare

SEED = 20240611
TASK = "image_captioning"

# ---------------------------------------------------------------------------------- lite scenes
IMG = 32
N_TRAIN, N_VAL, N_TEST = 3000, 500, 500
CAPTIONS_PER_IMAGE = 5
COLOURS = {  # name -> RGB; each drawn shape gets a little jitter around it
    "red": (215, 45, 40), "green": (45, 175, 65), "blue": (50, 85, 230),
    "yellow": (230, 210, 45), "purple": (150, 65, 200), "white": (235, 235, 235),
}
SHAPES = ("circle", "square", "triangle")
SIZES = {"small": (3.0, 4.0), "large": (6.0, 7.5)}  # half-width range in pixels
NOUNS = {"circle": ["circle", "disc", "circle"], "square": ["square", "box", "square"], "triangle": ["triangle"]}
SIZE_WORDS = {"small": ["small", "little", "tiny", "small"], "large": ["large", "big", "large"]}
ROWS, COLS = ("top", "middle", "bottom"), ("left", "centre", "right")


def draw_scene(rng):
    """One image and its shapes [(shape, colour, size, cy, cx, half)], non-overlapping."""
    img = np.empty((IMG, IMG, 3), np.float32)
    img[:] = rng.uniform(10, 45) + rng.normal(0, 3, 3)  # dark background with a slight tint
    n = int(rng.choice([1, 2, 3], p=[0.3, 0.4, 0.3]))
    objs = []
    while len(objs) < n:
        shape, colour, size = rng.choice(SHAPES), rng.choice(list(COLOURS)), rng.choice(list(SIZES))
        if any(o[0] == shape and o[1] == colour for o in objs):
            continue  # every object in a scene is a distinct (shape, colour) pair
        half = rng.uniform(*SIZES[size])
        cy, cx = rng.uniform(half + 0.5, IMG - half - 0.5, 2)
        if any(max(abs(cy - o[3]), abs(cx - o[4])) < half + o[5] + 1.5 for o in objs):
            continue  # overlaps; draw another
        objs.append((str(shape), str(colour), str(size), cy, cx, half))
    yy, xx = np.mgrid[0:IMG, 0:IMG] + 0.5
    for shape, colour, _, cy, cx, h in objs:
        dy, dx = yy - cy, xx - cx
        if shape == "circle":
            mask = dy ** 2 + dx ** 2 <= h ** 2
        elif shape == "square":
            s = h * 0.85  # a square of the same "size" as a circle looks bigger; shrink it a bit
            mask = (np.abs(dy) <= s) & (np.abs(dx) <= s)
        else:  # upward triangle: apex at the top, base at the bottom
            mask = (dy <= h) & (dy >= -h) & (np.abs(dx) <= (dy + h) / 2)
        img[mask] = np.array(COLOURS[colour]) + rng.normal(0, 12, 3)
    img += rng.normal(0, 8, img.shape)  # sensor noise
    return np.clip(np.round(img), 0, 255).astype(np.uint8), objs


def where(o):
    r = ROWS[min(2, int(o[3] / IMG * 3))]
    c = COLS[min(2, int(o[4] / IMG * 3))]
    return r, c


def position_phrase(rng, o):
    r, c = where(o)
    if (r, c) == ("middle", "centre"):
        return str(rng.choice(["in the middle", "in the centre", "in the center of the image", "in the middle of the picture"]))
    if r == "middle":
        return str(rng.choice([f"on the {c}", f"on the {c} side", f"at the {c} of the image"]))
    if c == "centre":
        return str(rng.choice([f"at the {r}", f"near the {r} edge", f"at the {r} of the picture"]))
    r2 = "upper" if r == "top" else "lower"
    return str(rng.choice([f"in the {r} {c} corner", f"at the {r} {c}", f"in the {r2} {c} corner", f"in the {r} {c}"]))


def noun_phrase(rng, o, det=True, size=None):
    """'a small red circle' with synonyms; the size word is dropped now and then."""
    shape, colour, sz = o[:3]
    words = [colour, str(rng.choice(NOUNS[shape]))]
    if size if size is not None else rng.random() < 0.7:
        words.insert(0, str(rng.choice(SIZE_WORDS[sz])))
    if det:
        words.insert(0, "an" if words[0][0] in "aeiou" else "a")
    return " ".join(words)


def caption(rng, objs):
    np_ = lambda o, **k: noun_phrase(rng, o, **k)
    if len(objs) == 1:
        o = objs[0]
        forms = [
            lambda: f"{np_(o)} {position_phrase(rng, o)}",
            lambda: f"there is {np_(o)} {position_phrase(rng, o)}",
            lambda: f"{position_phrase(rng, o)} there is {np_(o)}",
            lambda: f"a single {np_(o, det=False, size=True)} {position_phrase(rng, o)}",
            lambda: f"an image of {np_(o)} on a dark background",
            lambda: f"one {np_(o, det=False)} {position_phrase(rng, o)}",
        ]
    elif len(objs) == 2:
        a, b = objs
        dy, dx = b[3] - a[3], b[4] - a[4]
        if abs(dy) > abs(dx):  # mostly vertical: a above b
            a, b = (a, b) if dy > 0 else (b, a)
            rel, inv = ["above", "over"], ["below", "under", "beneath"]
        else:  # mostly horizontal: a left of b
            a, b = (a, b) if dx > 0 else (b, a)
            rel, inv = ["to the left of", "left of"], ["to the right of", "right of"]
        forms = [
            lambda: f"{np_(a)} {rng.choice(rel)} {np_(b)}",
            lambda: f"{np_(b)} {rng.choice(inv)} {np_(a)}",
            lambda: f"there is {np_(a)} {rng.choice(rel)} {np_(b)}",
            lambda: f"two shapes: {np_(a)} and {np_(b)}",
            lambda: f"{np_(a)} and {np_(b)} on a dark background",
            lambda: f"{np_(b)} and {np_(a)}",
        ]
    else:
        a, b, c = sorted(objs, key=lambda o: o[4])  # left to right
        forms = [
            lambda: f"three shapes: {np_(a)}, {np_(b)} and {np_(c)}",
            lambda: f"{np_(a)}, {np_(b)} and {np_(c)}",
            lambda: f"{np_(a)}, {np_(b)} and {np_(c)} from left to right",
            lambda: f"there are three shapes: {np_(a)}, {np_(b)} and {np_(c)}",
            lambda: f"{np_(c)}, {np_(b)} and {np_(a)} from right to left",
            lambda: f"a group of three shapes including {np_(b)}",
        ]
    return forms[int(rng.integers(len(forms)))]()


def make_lite(pub, priv):
    rng = np.random.default_rng(SEED)
    n = N_TRAIN + N_VAL + N_TEST
    images, captions = np.empty((n, IMG, IMG, 3), np.uint8), []
    for i in range(n):
        images[i], objs = draw_scene(rng)
        caps = []
        while len(caps) < CAPTIONS_PER_IMAGE:  # five different references per image
            c = caption(rng, objs)
            if c not in caps:
                caps.append(c)
        captions.append(caps)
    splits = {"train": range(0, N_TRAIN), "validation": range(N_TRAIN, N_TRAIN + N_VAL),
              "test": range(N_TRAIN + N_VAL, n)}
    for split, idx in splits.items():
        recs = [{"id": f"{split}_{k:05d}", "captions": captions[i]} for k, i in enumerate(idx)]
        np.save(os.path.join(pub, f"{split}_images.npy"), images[list(idx)])
        if split == "test":
            write_json(os.path.join(priv, "test_references.json"), {r["id"]: r["captions"] for r in recs})
            recs = [{"id": r["id"]} for r in recs]
        write_json(os.path.join(pub, f"{split}.json"), recs)
    return {k: len(v) for k, v in splits.items()}


# ----------------------------------------------------------------------------------- full COCO
LAYOUT = ("annotations/captions_train2014.json", "annotations/captions_val2014.json", "train2014/", "val2014/")
N_FULL_TEST = N_FULL_VAL = 5000


def read_coco(root, split):
    """{image id: (path to jpg, [captions])} from a COCO captions json, captions in annotation order."""
    with open(os.path.join(root, "annotations", f"captions_{split}.json")) as f:
        ann = json.load(f)
    folder = os.path.join(root, split)
    present = set(os.listdir(folder))
    images = {}
    for im in ann["images"]:
        if im["file_name"] not in present:
            raise prepare.DataMissing(f"{folder}/{im['file_name']} is listed in captions_{split}.json but "
                                      f"missing; unpack the complete {split}.zip there")
        images[im["id"]] = (os.path.join(folder, im["file_name"]), [])
    for a in sorted(ann["annotations"], key=lambda a: a["id"]):
        images[a["image_id"]][1].append(" ".join(a["caption"].split()))  # one line, single spaces
    return {k: v for k, v in images.items() if v[1]}


def link(src, dst):
    try:
        os.link(src, dst)  # no copy of 13 GB when OUT is on the same file system
    except OSError:
        shutil.copyfile(src, dst)


def make_full(ctx, pub, priv):
    def need(root):
        return (f"put MS-COCO 2014 in {root}/ as " + ", ".join(f"{p}{'*.jpg' if p.endswith('/') else ''}" for p in LAYOUT)
                + " (from https://cocodataset.org/#download)")
    try:
        root = str(ctx.data_dir)
    except prepare.DataMissing:
        raise prepare.DataMissing(f"MLGYM_DATA_DIR is not set; {need('$MLGYM_DATA_DIR/' + TASK)}") from None
    absent = [p for p in LAYOUT if not os.path.exists(os.path.join(root, p))]
    if absent:
        raise prepare.DataMissing(f"{os.path.join(root, absent[0])} not found; {need(root)}")
    train, val = read_coco(root, "train2014"), read_coco(root, "val2014")
    order = sorted(val)
    order = [order[i] for i in np.random.default_rng(SEED).permutation(len(order))]
    k = min(N_FULL_TEST, len(order) // 3)  # 5,000 each on the real data; a third each on a tiny copy
    splits = {
        "test": [("test", i) for i in order[:k]],
        "validation": [("val", i) for i in order[k:2 * k]],
        "train": [("train", i) for i in sorted(train)] + [("val", i) for i in sorted(order[2 * k:])],
    }
    for split, items in splits.items():
        os.makedirs(os.path.join(pub, "images", split))
        recs = []
        for n, (src, image_id) in enumerate(items):
            path, caps = (train if src == "train" else val)[image_id]
            # test images get opaque ids and file names; the others keep the COCO id and name
            rid = f"test_{n:05d}" if split == "test" else str(image_id)
            name = f"{rid}.jpg" if split == "test" else os.path.basename(path)
            link(path, os.path.join(pub, "images", split, name))
            recs.append({"id": rid, "file": f"images/{split}/{name}", "captions": caps})
        if split == "test":
            write_json(os.path.join(priv, "test_references.json"), {r["id"]: r["captions"] for r in recs})
            recs = [{"id": r["id"], "file": r["file"]} for r in recs]
        write_json(os.path.join(pub, f"{split}.json"), recs)
    return {k: len(v) for k, v in splits.items()}


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=0, ensure_ascii=False)
        f.write("\n")


def build(ctx: prepare.Context) -> str:
    pub, priv = str(ctx.public), str(ctx.private)
    counts = make_lite(pub, priv) if ctx.size == "lite" else make_full(ctx, pub, priv)
    return " ".join(f"{k}={v}" for k, v in counts.items())


if __name__ == "__main__":
    prepare.run(build)
