"""Build the small image-classification data (MLGym-Bench family imageClassificationFMnist).

Usage: python prepare.py --size lite|full --out OUT

lite: scikit-learn's bundled handwritten digits (1,797 images of 8x8 pixels, intensities 0..16
      rescaled to 0..255), shuffled with a fixed seed and split 60/20/20:
      1079 train / 359 validation / 359 test.
full: Fashion-MNIST (28x28 grey) read from the original idx files in
      $MLGYM_DATA_DIR/image_classification_small/ (train-images-idx3-ubyte.gz,
      train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz).
      The 60,000 training images are split 55,000 train / 5,000 validation with a fixed seed;
      the t10k files are the test set, in their original order.

Writes OUT/public/{train,val}_{images,labels}.npy, test_images.npy, classes.json and
OUT/private/answers.csv (id,label; id = row index in test_images.npy). Images are uint8
arrays of shape (N, H, W). .npy files (not .npz, whose zip entries carry timestamps) keep the
output byte-identical between runs.
"""
import gzip
import json
import sys

import numpy as np

from pytest_mlgym.sdk import prepare

SEED = 0
FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
         "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def split(x, y, n_val, n_test=0):
    order = np.random.default_rng(SEED).permutation(len(y))
    test, val, train = np.split(order, [n_test, n_test + n_val])
    return (x[train], y[train]), (x[val], y[val]), (x[test], y[test])


def load_lite():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.round(d.images * (255 / 16)).astype(np.uint8)  # same 0..255 scale as the full size
    n = int(round(0.2 * len(x)))
    train, val, test = split(x, d.target.astype(np.int64), n_val=n, n_test=n)
    return (train, val, test), [str(i) for i in range(10)]


def read_idx(path, ndim):
    """An idx file (gzip-compressed): magic 0x0000 | type 0x08 (ubyte) | ndim, then ndim
    big-endian uint32 sizes, then the data in C order."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != 0x08 or raw[3] != ndim:
        sys.exit(f"prepare.py: {path}: not an idx file of {ndim}-d unsigned bytes (header {raw[:4].hex()})")
    shape = tuple(int(s) for s in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        sys.exit(f"prepare.py: {path}: header says {shape} but holds {data.size} bytes of data")
    return data.reshape(shape).copy()


def load_full(ctx: prepare.Context):
    folder = ctx.data_dir
    names = [n for pair in FILES.values() for n in pair]
    absent = [n for n in names if not (folder / n).is_file()]
    if absent:
        raise prepare.DataMissing(f"Fashion-MNIST not found: put the original idx files ({', '.join(names)}) in "
                                  f"{folder}/ (missing: {', '.join(absent)})")

    def pair(kind):
        images, labels = (folder / n for n in FILES[kind])
        x, y = read_idx(images, 3), read_idx(labels, 1).astype(np.int64)
        if len(x) != len(y):
            sys.exit(f"prepare.py: {kind}: {len(x)} images but {len(y)} labels")
        return x, y

    x, y = pair("train")
    train, val, _ = split(x, y, n_val=len(y) // 12)  # 5,000 of the real 60,000
    return (train, val, pair("test")), FASHION_CLASSES


def build(ctx: prepare.Context) -> str:
    (train, val, test), classes = load_lite() if ctx.size == "lite" else load_full(ctx)
    for _, y in (train, val, test):
        if y.min() < 0 or y.max() >= len(classes):
            sys.exit(f"prepare.py: labels outside 0..{len(classes) - 1}")
    pub, priv = ctx.public, ctx.private
    np.save(pub / "train_images.npy", train[0])
    np.save(pub / "train_labels.npy", train[1])
    np.save(pub / "val_images.npy", val[0])
    np.save(pub / "val_labels.npy", val[1])
    np.save(pub / "test_images.npy", test[0])
    (pub / "classes.json").write_text(json.dumps(classes) + "\n")
    (priv / "answers.csv").write_text("id,label\n" + "".join(f"{i},{c}\n" for i, c in enumerate(test[1].tolist())))
    return (f"train={len(train[1])} validation={len(val[1])} test={len(test[1])} "
            f"image shape={train[0].shape[1:]}")


if __name__ == "__main__":
    prepare.run(build)
