"""Make the reference checkpoint reference/model/model.pt (and the workspace's sample_model/).

Run from a copy of the workspace that holds data/ (the lite size):
    python make_reference.py            # -> model/model.pt: train.py, larger, longer, tuned
    python make_reference.py --sample   # -> sample_model/model.pt: a tiny untrained GPT
The reference is the baseline train.py with a 4-layer, 128-wide model, a 256-byte context and
3x the optimisation steps (about 1 hour on a busy 2-core CPU). Then copy model/ to reference/model/.
"""
import sys

import train

if "--sample" in sys.argv:  # valid but poor: the format of a submission, nothing learnt
    import os
    import torch
    from model import GPT, GPTConfig
    torch.manual_seed(0)
    os.makedirs("sample_model", exist_ok=True)
    model = GPT(GPTConfig(vocab_size=256, block_size=64, n_layer=1, n_head=2, n_embd=32))
    torch.save(model.checkpoint(), "sample_model/model.pt")
else:
    # THREADS=1: faster than 2 on a CPU shared with other jobs
    vars(train).update(N_LAYER=4, N_EMBD=128, N_HEAD=4, BLOCK_SIZE=256, BATCH_SIZE=16, MAX_STEPS=1500,
                       LEARNING_RATE=4e-3, WARMUP_STEPS=100, THREADS=1)
    train.main()
