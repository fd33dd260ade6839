"""Baseline captioner: a small CNN encoder + GRU decoder, trained with teacher forcing.

Reads data/ (layout in README.md), trains on every (image, caption) pair of data/train.json,
prints the validation BLEU of greedy decoding (a rough guide; the official score is computed
by the evaluator on the hidden test references) and writes submission.csv (id,caption).
"""
import csv
import json
import os
import re
import time

import numpy as np
import torch
import torch.nn as nn

EPOCHS = 6  # passes over the training images
LEARNING_RATE = 2e-3  # Adam step size
HIDDEN = 128  # GRU state size (= image feature size)
EMBED = 32  # word embedding size
BATCH_SIZE = 32  # images per step (each with all its captions)

SEED = int(os.environ.get("MLGYM_SEED", "0"))  # the episode seed (the harness sets it; 0 when run by hand)
MAX_LEN = 30  # longest generated caption, in tokens
FULL_IMAGE_SIZE = 64  # full size only: COCO JPEGs are resized to this square
torch.manual_seed(SEED)
np.random.seed(SEED)
torch.set_num_threads(1)  # the ops are small: one thread is as fast as two and is not slowed by a busy machine
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


# ------------------------------------------------------------------------------------ data
def load_split(split):
    """(records, uint8 images [N, H, W, 3]) for train / validation / test."""
    with open(f"data/{split}.json") as f:
        recs = json.load(f)
    if os.path.exists(f"data/{split}_images.npy"):  # lite: all images in one array
        return recs, np.load(f"data/{split}_images.npy")
    cache = f"cache_{split}_{FULL_IMAGE_SIZE}.npy"  # full: decode the JPEGs once, then reuse
    if not os.path.exists(cache):
        from PIL import Image

        def read(r):
            with Image.open(os.path.join("data", r["file"])) as im:
                return np.asarray(im.convert("RGB").resize((FULL_IMAGE_SIZE, FULL_IMAGE_SIZE)))
        np.save(cache, np.stack([read(r) for r in recs]))
    return recs, np.load(cache)


def tokenize(text):
    return re.findall(r"[a-z0-9']+|[^\sa-z0-9']", text.lower())


def detokenize(tokens):
    return re.sub(r" ([,.:;!?])", r"\1", " ".join(tokens))


train, x_train = load_split("train")
val, x_val = load_split("validation")
test, x_test = load_split("test")

counts = {}
for r in train:
    for c in r["captions"]:
        for w in tokenize(c):
            counts[w] = counts.get(w, 0) + 1
vocab = ["<pad>", "<bos>", "<eos>", "<unk>"] + sorted(w for w, n in counts.items() if n >= 3)
index = {w: i for i, w in enumerate(vocab)}
PAD, BOS, EOS, UNK = range(4)

# every training image with all its captions, as token ids: <bos> words <eos>
captions = [[[BOS] + [index.get(w, UNK) for w in tokenize(c)][:MAX_LEN] + [EOS] for c in r["captions"]]
            for r in train]
print(f"{len(train)} train images, {sum(map(len, captions))} captions, vocabulary {len(vocab)}")


def to_tensor(images):  # uint8 [N, H, W, 3] -> roughly standardised float [N, 3, H, W]
    return (torch.from_numpy(np.ascontiguousarray(images)).to(DEVICE).permute(0, 3, 1, 2).float() - 60.0) / 70.0


# ----------------------------------------------------------------------------------- model
class Captioner(nn.Module):
    def __init__(self):
        super().__init__()
        self.cnn = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.AdaptiveAvgPool2d(4),
            nn.Flatten(), nn.Linear(64 * 16, HIDDEN), nn.Tanh(),
        )
        self.embed = nn.Embedding(len(vocab), EMBED, padding_idx=PAD)
        self.gru = nn.GRU(EMBED, HIDDEN, batch_first=True)
        self.out = nn.Linear(HIDDEN, len(vocab))

    def forward(self, images, tokens, which):  # logits for tokens[:, 1:] given tokens[:, :-1]
        h = self.cnn(images)[which].unsqueeze(0)  # caption j describes images[which[j]]
        y, _ = self.gru(self.embed(tokens[:, :-1]), h)
        return self.out(y)

    @torch.no_grad()
    def generate(self, images):  # greedy decoding
        h = self.cnn(images).unsqueeze(0)
        tok = torch.full((len(images), 1), BOS, device=DEVICE)
        seqs, done = [], torch.zeros(len(images), dtype=torch.bool, device=DEVICE)
        for _ in range(MAX_LEN):
            y, h = self.gru(self.embed(tok), h)
            tok = self.out(y[:, -1]).argmax(-1, keepdim=True)
            seqs.append(tok[:, 0])
            done |= tok[:, 0] == EOS
            if done.all():
                break
        out = []
        for row in torch.stack(seqs, 1).tolist():
            words = [vocab[t] for t in (row[:row.index(EOS)] if EOS in row else row)]
            out.append(detokenize(words) or "a shape")
        return out


model = Captioner().to(DEVICE)
opt = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
loss_fn = nn.CrossEntropyLoss(ignore_index=PAD)
start = time.time()
for epoch in range(EPOCHS):
    model.train()
    order = np.random.permutation(len(train))
    total, n = 0.0, 0
    for b in range(0, len(order), BATCH_SIZE):
        # a step sees BATCH_SIZE images, each once per caption: the CNN runs once per image
        idx = order[b:b + BATCH_SIZE]
        seqs = [(k, t) for k, i in enumerate(idx) for t in captions[i]]
        width = max(len(t) for _, t in seqs)
        tokens = torch.tensor([t + [PAD] * (width - len(t)) for _, t in seqs], device=DEVICE)
        logits = model(to_tensor(x_train[idx]), tokens, torch.tensor([k for k, _ in seqs], device=DEVICE))
        loss = loss_fn(logits.reshape(-1, len(vocab)), tokens[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        total, n = total + loss.item() * len(seqs), n + len(seqs)
    print(f"epoch {epoch + 1}/{EPOCHS}: loss {total / n:.3f} ({time.time() - start:.0f}s)")


def caption_all(x):
    model.eval()
    return [c for b in range(0, len(x), 256) for c in model.generate(to_tensor(x[b:b + 256]))]


val_caps = caption_all(x_val)
try:  # a rough guide only: the evaluator scores the test set
    import sacrebleu
    refs = [[r["captions"][k] if k < len(r["captions"]) else None for r in val]
            for k in range(max(len(r["captions"]) for r in val))]
    print(f"validation BLEU: {sacrebleu.corpus_bleu(val_caps, refs, lowercase=True).score / 100:.4f}")
except ImportError:
    pass
print("e.g.", val_caps[:3])

with open("submission.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["id", "caption"])
    w.writerows(zip([r["id"] for r in test], caption_all(x_test)))
print("wrote submission.csv")
