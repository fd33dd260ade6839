"""Score a language_modeling checkpoint folder.

Usage: python evaluate.py ARTEFACT   (ARTEFACT = the copied model/ folder)
Env: MLGYM_PRIVATE_DATA (lite: test.txt; full: fineweb_val_*.bin), MLGYM_SIZE (lite|full).

ARTEFACT/model.pt must be a torch checkpoint {"config": {...}, "state_dict": {...}} for the GPT
in model.py (this folder's trusted copy of the workspace's model.py). It is read with
torch.load(weights_only=True), so no agent code runs here. The model is built from the config
(checked against the size's limits) and the state_dict is loaded with strict=True.
The score is the mean next-token cross-entropy over the hidden text, read in consecutive
non-overlapping windows of block_size tokens (the first token of each window sees no context):
lite in bits per byte, full in nats per GPT-2 token (as MLGym reports validation loss).
Last stdout line: {"test_loss": ...} or {"invalid": "reason"}; exit 0 for any artefact.
"""
import glob
import json
import math
import os
import sys

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle OpenMP threads sleep (shared CPUs); before torch loads
HERE = os.path.dirname(os.path.abspath(__file__))
# Limits per size: config ranges (inclusive) and the parameter cap, which bounds evaluation time.
LIMITS = {
    "lite": dict(vocab_size=(256, 256), block_size=(8, 1024), n_layer=(1, 12), n_head=(1, 16),
                 n_embd=(16, 512), max_params=3_000_000, max_file_mb=64),
    "full": dict(vocab_size=(50257, 50304), block_size=(8, 2048), n_layer=(1, 48), n_head=(1, 64),
                 n_embd=(16, 2048), max_params=200_000_000, max_file_mb=512),
}
FULL_EVAL_TOKENS = 10_485_760  # the first 10M val tokens, as modded-nanogpt / MLGym evaluate
TOKENS_PER_BATCH = 16_384  # windows are scored in batches of about this many tokens
SHARD_MAGIC, HEADER_INTS = 20240520, 256


class Invalid(Exception):
    pass


def load_text(size):
    private = os.environ.get("MLGYM_PRIVATE_DATA") or ""
    if size == "lite":
        path = os.path.join(private, "test.txt")
        if not os.path.isfile(path):
            fail(f"test text not found (MLGYM_PRIVATE_DATA={private!r})")
        return np.frombuffer(open(path, "rb").read(), dtype=np.uint8).astype(np.int64)
    shards = sorted(glob.glob(os.path.join(private, "fineweb_val_*.bin")))
    if not shards:
        fail(f"no fineweb_val_*.bin shards (MLGYM_PRIVATE_DATA={private!r})")
    parts, have = [], 0
    for path in shards:  # header: 256 int32 (magic, version, token count, ...), then uint16 tokens
        header = np.fromfile(path, dtype="<i4", count=HEADER_INTS)
        if len(header) != HEADER_INTS or header[0] != SHARD_MAGIC:
            fail(f"{path}: not a FineWeb shard")
        tokens = np.memmap(path, dtype="<u2", mode="r", offset=4 * HEADER_INTS, shape=(int(header[2]),))
        parts.append(np.asarray(tokens[:FULL_EVAL_TOKENS + 1 - have], dtype=np.int64))
        have += len(parts[-1])
        if have > FULL_EVAL_TOKENS:
            break
    return np.concatenate(parts)


def fail(msg):  # an engine set-up error, not the agent's fault
    print(f"evaluate.py: {msg}", file=sys.stderr)
    sys.exit(2)


def load_model(folder, size):
    import torch
    GPT, GPTConfig = trusted_model()

    lim = LIMITS[size]
    if os.path.islink(folder) or not os.path.isdir(folder):
        raise Invalid(f"{os.path.basename(folder)} must be a folder holding model.pt")
    path = os.path.join(folder, "model.pt")
    if os.path.islink(path) or not os.path.isfile(path):
        raise Invalid("model.pt not found in the artefact folder (save it with torch.save)")
    if os.path.getsize(path) > lim["max_file_mb"] << 20:
        raise Invalid(f"model.pt is larger than {lim['max_file_mb']} MB")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise Invalid(f"model.pt is not a torch checkpoint loadable with weights_only=True: {error_text(e)}")
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("config"), dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise Invalid('model.pt must hold a dict {"config": dict, "state_dict": dict}')

    cfg = ckpt["config"]
    known = set(GPTConfig.__dataclass_fields__)
    if set(cfg) - known:
        raise Invalid(f"config has unknown key(s) {sorted(map(str, set(cfg) - known))}; allowed: {sorted(known)}")
    missing = known - {"dropout"} - set(cfg)
    if missing:
        raise Invalid(f"config lacks {sorted(missing)}")
    for key, (lo, hi) in ((k, v) for k, v in lim.items() if k in known):
        value = cfg[key]
        if type(value) is not int or not lo <= value <= hi:
            raise Invalid(f"config {key}={value!r} must be an integer in [{lo}, {hi}] for the {size} size")
    dropout = cfg.get("dropout", 0.0)
    if type(dropout) not in (int, float) or not 0 <= dropout < 1:
        raise Invalid(f"config dropout={dropout!r} must be a number in [0, 1)")
    if cfg["n_embd"] % cfg["n_head"]:
        raise Invalid(f"config n_embd={cfg['n_embd']} is not a multiple of n_head={cfg['n_head']}")
    config = GPTConfig(**{**cfg, "dropout": float(dropout)})
    with torch.device("meta"):  # count parameters before allocating any
        n_params = sum(p.numel() for p in GPT(config).parameters())
    if n_params > lim["max_params"]:
        raise Invalid(f"the model has {n_params} parameters, over the {size} limit of {lim['max_params']}")

    sd = ckpt["state_dict"]
    for name, t in sd.items():
        if not isinstance(t, torch.Tensor) or t.layout != torch.strided or not t.is_floating_point():
            raise Invalid(f"state_dict[{name!r}] is not a dense floating-point tensor")
        if not bool(torch.isfinite(t).all()):
            raise Invalid(f"state_dict[{name!r}] holds NaN or inf")
    torch.manual_seed(0)
    model = GPT(config)
    try:
        model.load_state_dict(sd, strict=True)
    except Exception as e:
        raise Invalid(f"state_dict does not fit the GPT of this config: {' '.join(str(e).split())[:300]}")
    return model.eval(), n_params


def trusted_model():
    """GPT and GPTConfig from model.py next to this file, by path: never a module the artefact shadows."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("trusted_gpt", os.path.join(HERE, "model.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module.GPT, module.GPTConfig


def first_line(e):
    lines = [s.strip() for s in str(e).splitlines() if s.strip()]
    return (lines[0] if lines else "")[:200]


def error_text(e):
    """``Type: first line of the message``, or just ``Type`` (a truncated file's bare EOFError)."""
    return f"{type(e).__name__}: {first_line(e)}" if first_line(e) else type(e).__name__


def mean_loss(model, data, device):
    """Mean cross-entropy (nats) of predicting data[1:] from non-overlapping windows of block_size."""
    import torch
    import torch.nn.functional as F

    T = model.config.block_size
    x, y = torch.from_numpy(data[:-1]), torch.from_numpy(data[1:])
    n = len(y)
    pad = -n % T  # the last window is padded; padded targets are ignored (causal: no effect on the rest)
    x = torch.cat([x, x.new_zeros(pad)]).view(-1, T)
    y = torch.cat([y, y.new_full((pad,), -100)]).view(-1, T)
    batch = max(1, TOKENS_PER_BATCH // T)
    total = 0.0
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" else torch.autocast("cpu", enabled=False)
    with torch.no_grad(), autocast:
        for i in range(0, len(x), batch):
            logits, _ = model(x[i:i + batch].to(device))
            total += float(F.cross_entropy(logits.flatten(0, 1).float(), y[i:i + batch].flatten().to(device),
                                           ignore_index=-100, reduction="sum"))
    return total / n


def main():
    if len(sys.argv) != 2:
        print(json.dumps({"invalid": "usage: evaluate.py ARTEFACT"}))
        return
    size = os.environ.get("MLGYM_SIZE", "lite")
    if size not in LIMITS:
        fail(f"unknown MLGYM_SIZE {size!r}")
    data = load_text(size)
    try:
        import torch
        torch.set_num_threads(2)  # a fixed thread count: the same checkpoint always gets the same score
        device = "cuda" if size == "full" and torch.cuda.is_available() else "cpu"
        model, n_params = load_model(os.path.abspath(sys.argv[1]), size)
        loss = mean_loss(model.to(device), data, device)
        if not math.isfinite(loss):
            raise Invalid("the model's predictions are not finite (NaN/inf loss)")
        if size == "lite":
            bpb = loss / math.log(2)
            print(json.dumps({"test_loss": round(bpb, 6), "bits_per_byte": round(bpb, 6),
                              "bytes": len(data) - 1, "params": n_params}))
        else:
            print(json.dumps({"test_loss": round(loss, 6), "nats_per_token": round(loss, 6),
                              "tokens": len(data) - 1, "params": n_params}))
    except Invalid as e:
        print(json.dumps({"invalid": str(e)[:400]}))
    except Exception as e:  # never crash on a bad artefact
        print(json.dumps({"invalid": f"could not score: {error_text(e)}"[:300]}))


if __name__ == "__main__":
    main()
