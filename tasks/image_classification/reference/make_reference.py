"""Make the reference submission.csv (shipped precomputed: it trains for a few minutes).

Run from a copy of the workspace that holds data/:  python make_reference.py [--validate]
A three-block CNN (3x3 convs with batch norm, 32-64-128 channels), Adam with a one-cycle
learning-rate schedule, label smoothing and random-shift augmentation, trained on
train+validation. With --validate it first trains on the training set alone and reports the
validation accuracy.
"""
import json
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

EPOCHS = 12
BATCH_SIZE = 64
LEARNING_RATE = 3e-3
SEED = 0

torch.manual_seed(SEED)
torch.set_num_threads(2)

train_x, train_y = np.load("data/train_images.npy"), np.load("data/train_labels.npy")
val_x, val_y = np.load("data/val_images.npy"), np.load("data/val_labels.npy")
test_x = np.load("data/test_images.npy")
num_classes = len(json.load(open("data/classes.json")))
channels = train_x.shape[3]
mean, std = train_x.mean(axis=(0, 1, 2)) / 255.0, train_x.std(axis=(0, 1, 2)) / 255.0


def to_tensor(x):
    x = (x.astype(np.float32) / 255.0 - mean) / std
    return torch.from_numpy(x.astype(np.float32)).permute(0, 3, 1, 2).contiguous()


def block(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


def make_model():
    return nn.Sequential(block(channels, 32), nn.MaxPool2d(2), block(32, 64), nn.MaxPool2d(2), block(64, 128),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(128, num_classes))


def shift(x, pad=2):
    """Random translation by up to `pad` pixels (zero padding + random crop), per batch."""
    h, w = x.shape[2:]
    x = F.pad(x, (pad, pad, pad, pad))
    i, j = np.random.randint(0, 2 * pad + 1, size=2)
    return x[:, :, i:i + h, j:j + w]


def train(X, Y):
    model = make_model()
    opt = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE, weight_decay=1e-4)
    steps = EPOCHS * ((len(X) + BATCH_SIZE - 1) // BATCH_SIZE)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LEARNING_RATE, total_steps=steps)
    for epoch in range(EPOCHS):
        model.train()
        order = torch.randperm(len(X))
        for i in range(0, len(X), BATCH_SIZE):
            idx = order[i:i + BATCH_SIZE]
            loss = F.cross_entropy(model(shift(X[idx])), Y[idx], label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        print(f"epoch {epoch + 1}/{EPOCHS}: loss {loss.item():.4f}", flush=True)
    return model


def predict(model, x):
    model.eval()
    with torch.no_grad():
        return torch.cat([model(b).argmax(1) for b in x.split(500)]).numpy()


np.random.seed(SEED)
X, Y, Xv = to_tensor(train_x), torch.from_numpy(train_y), to_tensor(val_x)
if "--validate" in sys.argv:
    print(f"validation accuracy (trained on train only): {(predict(train(X, Y), Xv) == val_y).mean():.4f}")

model = train(torch.cat([X, Xv]), torch.cat([Y, torch.from_numpy(val_y)]))
pred = predict(model, to_tensor(test_x))
with open("submission.csv", "w") as f:
    f.write("id,label\n" + "".join(f"{i},{p}\n" for i, p in enumerate(pred.tolist())))
print("wrote submission.csv")
