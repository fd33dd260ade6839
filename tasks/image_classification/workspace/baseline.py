"""Baseline: a small two-layer CNN trained briefly with plain SGD, on the CPU.

Reads data/ (train/validation/test images as uint8 arrays of shape (N, H, W, C)), trains on the
training set, prints the validation accuracy and writes submission.csv (id,label) with a
predicted class for every test image. Works for any image size and channel count.
"""
import json
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

LEARNING_RATE = 0.01  # plain SGD, no momentum
EPOCHS = 2
BATCH_SIZE = 64
WIDTH = 16  # channels of the first conv layer; the second has twice as many
SEED = int(os.environ.get("MLGYM_SEED", "0"))  # the episode seed (the harness sets it; 0 when run by hand)

torch.manual_seed(SEED)
torch.use_deterministic_algorithms(True)
torch.set_num_threads(2)  # a fixed thread count keeps CPU results reproducible

train_x = np.load("data/train_images.npy")
train_y = np.load("data/train_labels.npy")
val_x = np.load("data/val_images.npy")
val_y = np.load("data/val_labels.npy")
test_x = np.load("data/test_images.npy")
num_classes = len(json.load(open("data/classes.json")))
_, height, width, channels = train_x.shape

# Scale to [0, 1], then standardise each channel with the training set's mean and std.
mean = train_x.mean(axis=(0, 1, 2)) / 255.0
std = train_x.std(axis=(0, 1, 2)) / 255.0


def to_tensor(x):
    x = (x.astype(np.float32) / 255.0 - mean) / std
    return torch.from_numpy(x.astype(np.float32)).permute(0, 3, 1, 2).contiguous()  # NHWC -> NCHW


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, WIDTH, 3, padding=1)
        self.conv2 = nn.Conv2d(WIDTH, 2 * WIDTH, 3, padding=1)
        self.fc = nn.Linear(2 * WIDTH * (height // 4) * (width // 4), num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(x.flatten(1))


def predict(model, x):
    model.eval()
    with torch.no_grad():
        return torch.cat([model(b).argmax(1) for b in x.split(1000)]).numpy()


X, Y = to_tensor(train_x), torch.from_numpy(train_y)
Xv, Xt = to_tensor(val_x), to_tensor(test_x)
model = Net()
opt = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
for epoch in range(EPOCHS):
    model.train()
    order = torch.randperm(len(X))
    for i in range(0, len(X), BATCH_SIZE):
        idx = order[i:i + BATCH_SIZE]
        loss = F.cross_entropy(model(X[idx]), Y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(f"epoch {epoch + 1}/{EPOCHS}: last batch loss {loss.item():.4f}, "
          f"validation accuracy {(predict(model, Xv) == val_y).mean():.4f}")

pred = predict(model, Xt)
with open("submission.csv", "w") as f:
    f.write("id,label\n" + "".join(f"{i},{p}\n" for i, p in enumerate(pred.tolist())))
print("wrote submission.csv")
