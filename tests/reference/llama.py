"""Oracle for Rlhf.Model's Llama family: a tiny random model written by hand in torch (HF LlamaForCausalLM math:
RMSNorm, RoPE rotate_half, grouped-query attention, SwiGLU, untied lm_head), positions = max(cumsum(mask) - 1, 0).
Attention masks padded keys with finfo.min and zeroes the rows of queries that see no key (padded queries).
Writes model_llama (full training gradients) and model_llama_lora (PEFT LoRA r=2 on q_proj, v_proj: base frozen,
adapter gradients only).

Run: /usr/bin/python3 tests/reference/llama.py
"""
import math

import torch
import torch.nn.functional as F

from fixtures import save

torch.manual_seed(4321)
V, CTX, D, L, H, KV, FF = 24, 8, 16, 2, 4, 2, 16
HD = D // H
EPS = 1e-5
THETA = 10000.0
R, ALPHA = 2, 4.0


def rnd(*shape, std=0.3):
    return (torch.randn(*shape) * std).requires_grad_()


params = {"model.embed_tokens.weight": rnd(V, D, std=0.5)}
for i in range(L):
    p = f"model.layers.{i}."
    params[p + "input_layernorm.weight"] = (1 + 0.1 * torch.randn(D)).requires_grad_()
    params[p + "self_attn.q_proj.weight"] = rnd(H * HD, D)
    params[p + "self_attn.k_proj.weight"] = rnd(KV * HD, D)
    params[p + "self_attn.v_proj.weight"] = rnd(KV * HD, D)
    params[p + "self_attn.o_proj.weight"] = rnd(D, H * HD)
    params[p + "post_attention_layernorm.weight"] = (1 + 0.1 * torch.randn(D)).requires_grad_()
    params[p + "mlp.gate_proj.weight"] = rnd(FF, D)
    params[p + "mlp.up_proj.weight"] = rnd(FF, D)
    params[p + "mlp.down_proj.weight"] = rnd(D, FF)
params["model.norm.weight"] = (1 + 0.1 * torch.randn(D)).requires_grad_()
params["lm_head.weight"] = rnd(V, D)

lora = {}
for i in range(L):
    for m, out_dim in (("q_proj", H * HD), ("v_proj", KV * HD)):
        base = f"base_model.model.model.layers.{i}.self_attn.{m}."
        lora[base + "lora_A.weight"] = rnd(R, D)
        lora[base + "lora_B.weight"] = rnd(out_dim, R)  # nonzero so the adapter changes the output

B, T = 3, 6
tokens = torch.randint(0, V, (B, T))
mask = torch.tensor([[1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]], dtype=torch.float32)
loss_mask = torch.ones(B, T)
positions = (mask.cumsum(-1) - 1).clamp(min=0).long()


def rms(x, w):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS))


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


inv_freq = 1.0 / (THETA ** (torch.arange(0, HD, 2).float() / HD))
freqs = positions[..., None].float() * inv_freq  # [B,T,HD/2]
emb = torch.cat((freqs, freqs), dim=-1)
cos, sin = emb.cos()[:, None], emb.sin()[:, None]  # [B,1,T,HD]


def attention(q, k, v):
    t = q.shape[2]
    scores = q @ k.transpose(-1, -2) / math.sqrt(HD)
    causal = torch.tril(torch.ones(t, t, dtype=torch.bool))
    allowed = causal[None, None] & (mask[:, None, None, :] > 0)
    scores = scores.masked_fill(~allowed, torch.finfo(torch.float32).min)
    probs = torch.softmax(scores, dim=-1) * allowed.any(-1, keepdim=True)
    return probs @ v


def proj(x, P, A, name):
    y = x @ P[name + ".weight"].T
    key = "base_model.model." + name + ".lora_A.weight"
    if A is not None and key in A:
        y = y + (x @ A[key].T) @ A[key.replace("lora_A", "lora_B")].T * (ALPHA / R)
    return y


def forward(P, A=None):
    x = P["model.embed_tokens.weight"][tokens]
    for i in range(L):
        p = f"model.layers.{i}."
        h = rms(x, P[p + "input_layernorm.weight"])
        q = proj(h, P, A, p + "self_attn.q_proj").view(B, T, H, HD).transpose(1, 2)
        k = proj(h, P, A, p + "self_attn.k_proj").view(B, T, KV, HD).transpose(1, 2)
        v = proj(h, P, A, p + "self_attn.v_proj").view(B, T, KV, HD).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(H // KV, dim=1)
        v = v.repeat_interleave(H // KV, dim=1)
        a = attention(q, k, v).transpose(1, 2).reshape(B, T, H * HD)
        x = x + proj(a, P, A, p + "self_attn.o_proj")
        h = rms(x, P[p + "post_attention_layernorm.weight"])
        g = proj(h, P, A, p + "mlp.gate_proj")
        u = proj(h, P, A, p + "mlp.up_proj")
        x = x + proj(F.silu(g) * u, P, A, p + "mlp.down_proj")
    x = rms(x, P["model.norm.weight"])
    return x @ P["lm_head.weight"].T


targets = torch.zeros_like(tokens)
weights = torch.zeros_like(mask)
targets[:, :-1] = tokens[:, 1:]
weights[:, :-1] = mask[:, :-1] * mask[:, 1:] * loss_mask[:, 1:]
targets = targets * (weights > 0)


def loss_of(logits):
    nll = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), reduction="none")
    return (nll * weights.reshape(-1)).sum() / weights.sum()


common = {"tokens": tokens, "mask": mask, "loss_mask": loss_mask, "targets": targets, "weights": weights}

logits = forward(params)
loss = loss_of(logits)
loss.backward()
out = dict(common, logits=logits, loss=loss)
for name, t in params.items():
    out["param." + name] = t
    out["grad." + name] = t.grad
save("model_llama", out)

for t in params.values():
    t.grad = None
    t.requires_grad_(False)
logits = forward(params, lora)
loss = loss_of(logits)
loss.backward()
out = dict(common, logits=logits, loss=loss)
for name, t in params.items():
    out["param." + name] = t
for name, t in lora.items():
    out["lora." + name] = t
    out["lora_grad." + name] = t.grad
save("model_llama_lora", out)
