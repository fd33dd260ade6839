"""Score a language_modeling checkpoint folder: next-token loss on the hidden text, per split.

ARTEFACT/model.pt must be a torch checkpoint {"config": {...}, "state_dict": {...}} for the GPT of
the task's model.py (declared ``shared`` in task.yaml: the task folder's pristine copy, never the
agent's). It is read with torch.load(weights_only=True), so no agent code runs here. The model is
built from the config (checked against the size's limits), the state_dict loaded with strict=True.

The hidden text is read in consecutive non-overlapping windows of block_size tokens (at the full
size at most 1,024, MLGym's evaluation sequence length, so that a longer context buys nothing MLGym
would not score), one forward pass each, giving one loss per target token.
Splits: the target tokens are grouped in fixed chunks of CHUNK consecutive positions (chunk id =
position // CHUNK); ``ctx.row_splits`` over the chunk ids puts about 20% of the chunks in dev, the
rest in test. The windows do not depend on the split, so one pass scores both. The score is the
mean loss over a split's tokens: lite in bits per byte, full in nats per GPT-2 token (as MLGym
reports validation loss).
"""
import math
import os

import numpy as np

from pytest_mlgym.sdk import EvaluatorError, Invalid, evaluator, readers

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle OpenMP threads sleep (shared CPUs); before torch loads
# Limits per size: config ranges (inclusive) and the parameter cap, which bounds evaluation time.
LIMITS = {
    "lite": dict(vocab_size=(256, 256), block_size=(8, 1024), n_layer=(1, 12), n_head=(1, 16),
                 n_embd=(16, 512), max_params=3_000_000, max_file_mb=64),
    "full": dict(vocab_size=(50257, 50304), block_size=(8, 2048), n_layer=(1, 48), n_head=(1, 64),
                 n_embd=(16, 2048), max_params=200_000_000, max_file_mb=512),
}
FULL_EVAL_TOKENS = 10_485_760  # the first 10M val tokens, as modded-nanogpt / MLGym evaluate
FULL_WINDOW = 1024  # MLGym's evaluation sequence length (its val loop reads [64, 1024] batches)
TOKENS_PER_BATCH = 16_384  # windows are scored in batches of about this many tokens
CHUNK = 1024  # target tokens per split unit: lite 128 chunks (1 KiB of text each), full 10,240
SHARD_MAGIC, HEADER_INTS = 20240520, 256


def load_text(ctx: evaluator.Context) -> np.ndarray:
    if ctx.size == "lite":
        return np.frombuffer(ctx.private("test.txt").read_bytes(), dtype=np.uint8).astype(np.int64)
    shards = sorted(ctx.private().glob("fineweb_val_*.bin"))
    if not shards:
        raise EvaluatorError(f"no fineweb_val_*.bin shards in {ctx.private_dir}")
    parts, have = [], 0
    for path in shards:  # header: 256 int32 (magic, version, token count, ...), then uint16 tokens
        header = np.fromfile(path, dtype="<i4", count=HEADER_INTS)
        if len(header) != HEADER_INTS or header[0] != SHARD_MAGIC:
            raise EvaluatorError(f"{path}: not a FineWeb shard")
        tokens = np.memmap(path, dtype="<u2", mode="r", offset=4 * HEADER_INTS, shape=(int(header[2]),))
        parts.append(np.asarray(tokens[:FULL_EVAL_TOKENS + 1 - have], dtype=np.int64))
        have += len(parts[-1])
        if have > FULL_EVAL_TOKENS:
            break
    return np.concatenate(parts)


def load_model(ctx: evaluator.Context):
    import torch

    gpt = ctx.import_shared("model.py")
    lim = LIMITS[ctx.size]
    folder = readers.folder(ctx.artefact)
    path = readers.regular_file(folder / "model.pt", lim["max_file_mb"] << 20)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise Invalid(f"model.pt is not a torch checkpoint loadable with weights_only=True: {error_text(e)}") from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("config"), dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise Invalid('model.pt must hold a dict {"config": dict, "state_dict": dict}')

    cfg = ckpt["config"]
    known = set(gpt.GPTConfig.__dataclass_fields__)
    if set(cfg) - known:
        raise Invalid(f"config has unknown key(s) {sorted(map(str, set(cfg) - known))}; allowed: {sorted(known)}")
    missing = known - {"dropout"} - set(cfg)
    if missing:
        raise Invalid(f"config lacks {sorted(missing)}")
    for key, (lo, hi) in ((k, v) for k, v in lim.items() if k in known):
        value = cfg[key]
        if type(value) is not int or not lo <= value <= hi:
            raise Invalid(f"config {key}={value!r} must be an integer in [{lo}, {hi}] for the {ctx.size} size")
    dropout = cfg.get("dropout", 0.0)
    if type(dropout) not in (int, float) or not 0 <= dropout < 1:
        raise Invalid(f"config dropout={dropout!r} must be a number in [0, 1)")
    if cfg["n_embd"] % cfg["n_head"]:
        raise Invalid(f"config n_embd={cfg['n_embd']} is not a multiple of n_head={cfg['n_head']}")
    config = gpt.GPTConfig(**{**cfg, "dropout": float(dropout)})
    with torch.device("meta"):  # count parameters before allocating any
        n_params = sum(p.numel() for p in gpt.GPT(config).parameters())
    if n_params > lim["max_params"]:
        raise Invalid(f"the model has {n_params} parameters, over the {ctx.size} limit of {lim['max_params']}")

    sd = ckpt["state_dict"]
    for name, t in sd.items():
        if not isinstance(t, torch.Tensor) or t.layout != torch.strided or not t.is_floating_point():
            raise Invalid(f"state_dict[{name!r}] is not a dense floating-point tensor")
        if not bool(torch.isfinite(t).all()):
            raise Invalid(f"state_dict[{name!r}] holds NaN or inf")
    torch.manual_seed(0)
    model = gpt.GPT(config)
    try:
        model.load_state_dict(sd, strict=True)
    except Exception as e:
        raise Invalid(f"state_dict does not fit the GPT of this config: {' '.join(str(e).split())[:300]}") from None
    return model.eval(), n_params


def error_text(e: Exception) -> str:
    """``Type: first line of the message``, or just ``Type`` (a truncated file's bare EOFError)."""
    lines = [s.strip() for s in str(e).splitlines() if s.strip()]
    return f"{type(e).__name__}: {lines[0][:200]}" if lines else type(e).__name__


def token_losses(model, data: np.ndarray, device: str, T: int) -> np.ndarray:
    """Cross-entropy (nats) of predicting each of data[1:], from non-overlapping windows of T tokens."""
    import torch
    import torch.nn.functional as F

    x, y = torch.from_numpy(data[:-1]), torch.from_numpy(data[1:])
    n = len(y)
    pad = -n % T  # the last window is padded; padded targets are dropped (causal: no effect on the rest)
    x = torch.cat([x, x.new_zeros(pad)]).view(-1, T)
    y = torch.cat([y, y.new_full((pad,), -100)]).view(-1, T)
    batch = max(1, TOKENS_PER_BATCH // T)
    out = []
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" else torch.autocast("cpu", enabled=False)
    with torch.no_grad(), autocast:
        for i in range(0, len(x), batch):
            logits, _ = model(x[i:i + batch].to(device))
            out.append(F.cross_entropy(logits.flatten(0, 1).float(), y[i:i + batch].flatten().to(device),
                                       ignore_index=-100, reduction="none").cpu())
    return torch.cat(out).double().numpy()[:n]


def score(ctx: evaluator.Context) -> dict:
    import torch

    if ctx.size not in LIMITS:
        raise EvaluatorError(f"unknown size {ctx.size!r}")
    data = load_text(ctx)
    torch.set_num_threads(2)  # a fixed thread count: the same checkpoint always gets the same score
    device = "cuda" if ctx.size == "full" and torch.cuda.is_available() else "cpu"
    model, n_params = load_model(ctx)
    window = model.config.block_size if ctx.size == "lite" else min(model.config.block_size, FULL_WINDOW)
    losses = token_losses(model.to(device), data, device, window)
    chunk = np.arange(len(losses)) // CHUNK
    out = {}
    for split, mask in ctx.row_splits(range(chunk[-1] + 1)).items():
        loss = float(losses[mask[chunk]].mean())
        if not math.isfinite(loss):
            raise Invalid("the model's predictions are not finite (NaN/inf loss)")
        if ctx.size == "lite":
            bpb = round(loss / math.log(2), 6)
            out[split] = {"test_loss": bpb, "bits_per_byte": bpb, "bytes": int(mask[chunk].sum()), "params": n_params}
        else:
            out[split] = {"test_loss": round(loss, 6), "nats_per_token": round(loss, 6),
                          "tokens": int(mask[chunk].sum()), "params": n_params}
    return out


if __name__ == "__main__":
    evaluator.run(score)
