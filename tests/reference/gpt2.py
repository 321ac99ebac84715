"""Oracle for Rlhf.Model's GPT-2 family: a tiny random model written by hand in torch (HF GPT2LMHeadModel math,
Conv1D [in, out] weights, tanh GELU, tied head), positions = max(cumsum(mask) - 1, 0) as HF generation passes them.
Attention masks padded keys with finfo.min and zeroes the rows of queries that see no key (padded queries), which
is what the C# engine computes. Records parameters, logits, loss and every parameter gradient.

Run: /usr/bin/python3 tests/reference/gpt2.py
"""
import math

import torch
import torch.nn.functional as F

from fixtures import save

torch.manual_seed(1234)
V, CTX, D, L, H = 24, 8, 8, 2, 2
HD = D // H
EPS = 1e-5


def rnd(*shape, std=0.3):
    return (torch.randn(*shape) * std).requires_grad_()


params = {"transformer.wte.weight": rnd(V, D), "transformer.wpe.weight": rnd(CTX, D)}
for i in range(L):
    p = f"transformer.h.{i}."
    params[p + "ln_1.weight"] = (1 + 0.1 * torch.randn(D)).requires_grad_()
    params[p + "ln_1.bias"] = rnd(D, std=0.1)
    params[p + "attn.c_attn.weight"] = rnd(D, 3 * D)
    params[p + "attn.c_attn.bias"] = rnd(3 * D, std=0.1)
    params[p + "attn.c_proj.weight"] = rnd(D, D)
    params[p + "attn.c_proj.bias"] = rnd(D, std=0.1)
    params[p + "ln_2.weight"] = (1 + 0.1 * torch.randn(D)).requires_grad_()
    params[p + "ln_2.bias"] = rnd(D, std=0.1)
    params[p + "mlp.c_fc.weight"] = rnd(D, 4 * D)
    params[p + "mlp.c_fc.bias"] = rnd(4 * D, std=0.1)
    params[p + "mlp.c_proj.weight"] = rnd(4 * D, D)
    params[p + "mlp.c_proj.bias"] = rnd(D, std=0.1)
params["transformer.ln_f.weight"] = (1 + 0.1 * torch.randn(D)).requires_grad_()
params["transformer.ln_f.bias"] = rnd(D, std=0.1)

B, T = 2, 6
tokens = torch.randint(0, V, (B, T))
mask = torch.tensor([[1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1]], dtype=torch.float32)
loss_mask = torch.tensor([[0, 0, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1]], dtype=torch.float32)  # response-only loss
positions = (mask.cumsum(-1) - 1).clamp(min=0).long()


def attention(q, k, v, mask):
    # q [B,H,T,hd], k,v [B,KV,T,hd] already expanded to H heads
    t = q.shape[2]
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    causal = torch.tril(torch.ones(t, t, dtype=torch.bool))
    allowed = causal[None, None] & (mask[:, None, None, :] > 0)
    scores = scores.masked_fill(~allowed, torch.finfo(torch.float32).min)
    probs = torch.softmax(scores, dim=-1) * allowed.any(-1, keepdim=True)
    return probs @ v


def forward(P):
    x = P["transformer.wte.weight"][tokens] + P["transformer.wpe.weight"][positions]
    for i in range(L):
        p = f"transformer.h.{i}."
        h = F.layer_norm(x, (D,), P[p + "ln_1.weight"], P[p + "ln_1.bias"], EPS)
        qkv = h @ P[p + "attn.c_attn.weight"] + P[p + "attn.c_attn.bias"]
        q, k, v = qkv.split(D, dim=-1)
        q, k, v = (t.view(B, T, H, HD).transpose(1, 2) for t in (q, k, v))
        a = attention(q, k, v, mask).transpose(1, 2).reshape(B, T, D)
        x = x + a @ P[p + "attn.c_proj.weight"] + P[p + "attn.c_proj.bias"]
        h = F.layer_norm(x, (D,), P[p + "ln_2.weight"], P[p + "ln_2.bias"], EPS)
        m = F.gelu(h @ P[p + "mlp.c_fc.weight"] + P[p + "mlp.c_fc.bias"], approximate="tanh")
        x = x + m @ P[p + "mlp.c_proj.weight"] + P[p + "mlp.c_proj.bias"]
    x = F.layer_norm(x, (D,), P["transformer.ln_f.weight"], P["transformer.ln_f.bias"], EPS)
    return x @ P["transformer.wte.weight"].T


def shifted(tokens, mask, loss_mask):
    targets = torch.zeros_like(tokens)
    weights = torch.zeros_like(mask)
    targets[:, :-1] = tokens[:, 1:]
    weights[:, :-1] = mask[:, :-1] * mask[:, 1:] * loss_mask[:, 1:]
    return targets * (weights > 0), weights


logits = forward(params)
targets, weights = shifted(tokens, mask, loss_mask)
nll = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), reduction="none")
loss = (nll * weights.reshape(-1)).sum() / weights.sum()
loss.backward()

out = {"tokens": tokens, "mask": mask, "loss_mask": loss_mask, "targets": targets, "weights": weights,
       "logits": logits, "loss": loss}
for name, t in params.items():
    out["param." + name] = t
    out["grad." + name] = t.grad
save("model_gpt2", out)
