"""Baseline: a one-hidden-layer perceptron (scikit-learn MLPClassifier) trained for a few epochs.

Reads data/ (train/validation/test images as uint8 arrays of shape (N, H, W)), flattens each
image into a vector of pixels scaled to [0, 1], trains on the training set, prints the
validation accuracy and writes submission.csv (id,label) with a class for every test image.
"""
import os
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

HIDDEN = 32  # units in the hidden layer
LEARNING_RATE = 0.001  # Adam's initial step size
EPOCHS = 10  # passes over the training set (stopped early, hence the silenced warning)
BATCH_SIZE = 64
ALPHA = 0.0001  # L2 penalty
SEED = int(os.environ.get("MLGYM_SEED", "0"))  # the episode seed (the harness sets it; 0 when run by hand)


def load(name):
    x = np.load(f"data/{name}_images.npy")
    return x.reshape(len(x), -1).astype(np.float64) / 255.0


train_x, val_x, test_x = load("train"), load("val"), load("test")
train_y, val_y = np.load("data/train_labels.npy"), np.load("data/val_labels.npy")

model = MLPClassifier(hidden_layer_sizes=(HIDDEN,), learning_rate_init=LEARNING_RATE, max_iter=EPOCHS,
                      batch_size=BATCH_SIZE, alpha=ALPHA, random_state=SEED)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    model.fit(train_x, train_y)
print(f"validation accuracy: {model.score(val_x, val_y):.4f}")

pred = model.predict(test_x)
with open("submission.csv", "w") as f:
    f.write("id,label\n" + "".join(f"{i},{p}\n" for i, p in enumerate(pred.tolist())))
print("wrote submission.csv")
