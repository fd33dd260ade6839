"""Baseline: train a small byte-level GPT (model.py) and save it to model/model.pt.

    python train.py

Reads data/train.txt (lite) or data/fineweb_train_*.bin token shards (full), trains with AdamW
(linear warm-up, cosine decay), prints the validation loss computed exactly as the evaluator
computes the test loss, and writes model/model.pt = {"config": ..., "state_dict": ...}.
Seeded and single-process: the same settings give the same checkpoint on the same machine.
"""
import glob
import math
import os
import time

# Idle OpenMP threads sleep instead of spinning: much faster on a busy, shared CPU (set before torch loads).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch
import torch.nn.functional as F

from model import GPT, GPTConfig

# Main knobs (the evaluator enforces: block_size <= 1024, n_layer <= 12, n_embd <= 512,
# n_head <= 16 dividing n_embd, at most 3,000,000 parameters; see README.md)
LEARNING_RATE = 5e-3  # peak AdamW learning rate
MAX_STEPS = 500  # optimisation steps
BATCH_SIZE = 16  # sequences per step
N_LAYER = 3
N_EMBD = 96
BLOCK_SIZE = 128  # context length; also the evaluation window
# Other settings
N_HEAD = 4
DROPOUT = 0.0
WEIGHT_DECAY = 0.1
WARMUP_STEPS = 40
GRAD_CLIP = 1.0
SEED = 0
THREADS = 2  # CPU threads (the lite size is sized for 2 cores)
DATA_DIR = "data"
OUT_DIR = "model"
# The full size (FineWeb GPT-2 tokens) overrides the settings above with a GPT-2-small-sized run
# on a GPU; it was not measured here (see README.md).
FULL = dict(N_LAYER=12, N_HEAD=12, N_EMBD=768, BLOCK_SIZE=1024, BATCH_SIZE=32, MAX_STEPS=5000,
            LEARNING_RATE=6e-4, WARMUP_STEPS=200)
SHARD_MAGIC, HEADER_INTS = 20240520, 256


def read_shard(path):
    """A FineWeb token shard: 256 int32 header (magic 20240520, version, token count), uint16 tokens."""
    header = np.fromfile(path, dtype="<i4", count=HEADER_INTS)
    assert header[0] == SHARD_MAGIC, f"{path}: not a FineWeb shard"
    return np.memmap(path, dtype="<u2", mode="r", offset=4 * HEADER_INTS, shape=(int(header[2]),))


def load_data():
    """(list of training token arrays, validation tokens, vocab size, full?)."""
    shards = sorted(glob.glob(os.path.join(DATA_DIR, "fineweb_train_*.bin")))
    if shards:  # full size: the last shard is held out for validation (first 1M tokens of it)
        arrays = [read_shard(p) for p in shards]
        train, val = (arrays[:-1], arrays[-1]) if len(arrays) > 1 else ([arrays[0][:-(len(arrays[0]) // 20)]], arrays[0][-(len(arrays[0]) // 20):])
        return train, np.asarray(val[:1_000_001], dtype=np.int64), 50257, True
    read = lambda name: np.fromfile(os.path.join(DATA_DIR, name), dtype=np.uint8)
    return [read("train.txt")], read("val.txt").astype(np.int64), 256, False


def get_batch(arrays, rng, batch, T):
    """BATCH random windows of T+1 tokens (inputs and next-token targets)."""
    rows = []
    for _ in range(batch):
        a = arrays[rng.integers(len(arrays))]
        i = int(rng.integers(len(a) - T - 1))
        rows.append(np.asarray(a[i:i + T + 1], dtype=np.int64))
    xy = torch.from_numpy(np.stack(rows))
    return xy[:, :-1], xy[:, 1:]


@torch.no_grad()
def evaluate(model, data, device):
    """Mean next-token cross-entropy (nats) over non-overlapping windows of block_size, as the evaluator does."""
    model.eval()
    T = model.config.block_size
    x, y = torch.from_numpy(data[:-1]), torch.from_numpy(data[1:])
    n, pad = len(y), -len(y) % T
    x = torch.cat([x, x.new_zeros(pad)]).view(-1, T)
    y = torch.cat([y, y.new_full((pad,), -100)]).view(-1, T)
    total, batch = 0.0, max(1, 16384 // T)
    for i in range(0, len(x), batch):
        logits, _ = model(x[i:i + batch].to(device))
        total += float(F.cross_entropy(logits.flatten(0, 1).float(), y[i:i + batch].flatten().to(device),
                                       ignore_index=-100, reduction="sum"))
    model.train()
    return total / n


def main():
    train, val, vocab, full = load_data()
    if full:
        globals().update(FULL)
    torch.manual_seed(SEED)
    torch.set_num_threads(THREADS)
    rng = np.random.default_rng(SEED)
    device = "cuda" if full and torch.cuda.is_available() else "cpu"

    config = GPTConfig(vocab_size=vocab, block_size=BLOCK_SIZE, n_layer=N_LAYER, n_head=N_HEAD,
                       n_embd=N_EMBD, dropout=DROPOUT)
    model = GPT(config).to(device)
    print(f"{sum(p.numel() for p in model.parameters())} parameters, config {config}")
    decay = [p for p in model.parameters() if p.dim() >= 2]  # no weight decay on biases and norms
    rest = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": rest, "weight_decay": 0.0}],
                            lr=LEARNING_RATE, betas=(0.9, 0.95))

    start = time.time()
    for step in range(MAX_STEPS):
        # linear warm-up, then cosine decay to 10% of the peak
        frac = (step - WARMUP_STEPS) / max(1, MAX_STEPS - WARMUP_STEPS)
        lr = LEARNING_RATE * (min(1.0, (step + 1) / WARMUP_STEPS) if step < WARMUP_STEPS
                              else 0.1 + 0.45 * (1 + math.cos(math.pi * frac)))
        for group in opt.param_groups:
            group["lr"] = lr
        x, y = get_batch(train, rng, BATCH_SIZE, BLOCK_SIZE)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device == "cuda"):
            _, loss = model(x.to(device), y.to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        opt.step()
        if step % 100 == 0 or step == MAX_STEPS - 1:
            print(f"step {step:5d}  train loss {loss.item():.4f} nats  lr {lr:.2e}  {time.time() - start:.0f}s", flush=True)

    val_loss = evaluate(model, val, device)
    unit = f"{val_loss:.4f} nats/token" if full else f"{val_loss / math.log(2):.4f} bits/byte"
    print(f"validation loss {unit}")
    os.makedirs(OUT_DIR, exist_ok=True)
    torch.save(model.cpu().checkpoint(), os.path.join(OUT_DIR, "model.pt"))
    print(f"saved {OUT_DIR}/model.pt")


if __name__ == "__main__":
    main()
