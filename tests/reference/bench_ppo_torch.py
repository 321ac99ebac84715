"""PyTorch peer for benchmarks/Rlhf.Benchmarks/Ppo/PpoIterationBenchmarks: one PPO iteration with TRL's formulas on
the GPT-2 engine config (6 layers, 384 channels, 6 heads, vocab 50257, random weights), LoRA rank 8 on c_attn,
batch 4 prompts of 8 tokens x 16 new tokens (sampled; a KV-less generate, recomputing the prefix each step),
old/reference log-probs and values, GAE + whitening, 4 epochs x 2 minibatches of AdamW. Prints the time split.

Run: OMP_NUM_THREADS=2 /usr/bin/python3 tests/reference/bench_ppo_torch.py
"""
import math
import time

import torch
import torch.nn.functional as F

torch.manual_seed(0)
V, CTX, D, L, H, R = 50257, 64, 384, 6, 6, 8
B, P, N, MB, EPOCHS = 4, 8, 16, 2, 4
HD = D // H
W = {"wte": torch.randn(V, D) * 0.02, "wpe": torch.randn(CTX, D) * 0.01}
for i in range(L):
    W[f"{i}.attn"] = torch.randn(D, 3 * D) * 0.02
    W[f"{i}.proj"] = torch.randn(D, D) * 0.02
    W[f"{i}.fc"] = torch.randn(D, 4 * D) * 0.02
    W[f"{i}.fc2"] = torch.randn(4 * D, D) * 0.02
lora = {}
for i in range(L):
    lora[f"{i}.A"] = (torch.rand(R, D) * 2 - 1) / math.sqrt(D)
    lora[f"{i}.B"] = torch.zeros(3 * D, R)
for t in lora.values():
    t.requires_grad_()
v_head = (torch.randn(1, D) * 0.02).requires_grad_()


def forward(tokens, use_adapter=True):
    b, t = tokens.shape
    x = W["wte"][tokens] + W["wpe"][:t]
    causal = torch.tril(torch.ones(t, t, dtype=torch.bool))
    for i in range(L):
        h = F.layer_norm(x, (D,))
        qkv = h @ W[f"{i}.attn"]
        if use_adapter:
            qkv = qkv + (h @ lora[f"{i}.A"].T) @ lora[f"{i}.B"].T * 2.0
        q, k, v = (z.view(b, t, H, HD).transpose(1, 2) for z in qkv.split(D, -1))
        s = (q @ k.transpose(-1, -2) / math.sqrt(HD)).masked_fill(~causal, float("-inf"))
        x = x + (torch.softmax(s, -1) @ v).transpose(1, 2).reshape(b, t, D) @ W[f"{i}.proj"]
        x = x + F.gelu(F.layer_norm(x, (D,)) @ W[f"{i}.fc"], approximate="tanh") @ W[f"{i}.fc2"]
    hidden = F.layer_norm(x, (D,))
    return hidden @ W["wte"].T, hidden


def stats(tokens, use_adapter=True):
    logits, hidden = forward(tokens, use_adapter)
    lg = F.log_softmax(logits[:, P - 1:-1], -1)
    logp = torch.gather(lg, 2, tokens[:, P:].unsqueeze(-1)).squeeze(-1)
    ent = -(lg.exp() * lg).sum(-1)
    return logp, ent, (hidden[:, P - 1:-1] @ v_head.T).squeeze(-1)


opt = torch.optim.AdamW(list(lora.values()) + [v_head], lr=1.41e-5, weight_decay=0.0)
for rep in range(3):
    t0 = time.perf_counter()
    with torch.no_grad():
        tokens = torch.randint(0, V, (B, P))
        for _ in range(N):
            logits, _ = forward(tokens)
            nxt = torch.multinomial(torch.softmax(logits[:, -1], -1), 1)
            tokens = torch.cat([tokens, nxt], 1)
    t1 = time.perf_counter()
    with torch.no_grad():
        ref, _, _ = stats(tokens, use_adapter=False)
        old, _, values = stats(tokens)
        scores = torch.randn(B)
    t2 = time.perf_counter()
    with torch.no_grad():
        rewards = -0.2 * (old - ref)
        rewards[:, -1] += scores
        last, adv = torch.zeros(B), []
        for t in reversed(range(N)):
            nv = values[:, t + 1] if t < N - 1 else 0.0
            last = rewards[:, t] + nv - values[:, t] + 0.95 * last
            adv.append(last)
        adv = torch.stack(adv[::-1], 1)
        ret = adv + values
        adv = (adv - adv.mean()) / (adv.var() + 1e-8).sqrt()
    for _ in range(EPOCHS):
        for idx in torch.randperm(B).split(MB):
            logp, ent, vpred = stats(tokens[idx])
            ratio = torch.exp(logp - old[idx])
            pg = torch.max(-adv[idx] * ratio, -adv[idx] * ratio.clamp(0.8, 1.2)).mean()
            vc = torch.max(torch.min(vpred, values[idx] + 0.2), values[idx] - 0.2)
            vf = 0.5 * torch.max((vpred - ret[idx]) ** 2, (vc - ret[idx]) ** 2).mean()
            loss = pg + 0.1 * vf - 0.01 * ent.mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    t3 = time.perf_counter()
    print(f"rep {rep}: iteration {t3 - t0:.3f}s = generation {t1 - t0:.3f}s + old/ref {t2 - t1:.3f}s + update {t3 - t2:.3f}s; "
          f"{B * (P + N) * (1 + EPOCHS) / (t3 - t0):.0f} tok/s")
