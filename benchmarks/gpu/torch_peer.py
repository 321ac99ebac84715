"""PyTorch eager peer for the GPU report: the same ops at the same shapes, timed with CUDA events.

    python3 benchmarks/gpu/torch_peer.py            # CUDA when available, else CPU at small shapes
"""
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def timed(fn, device, repeats=20):
    for _ in range(3):
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        samples = []
        for _ in range(repeats):
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            samples.append(start.elapsed_time(end))
    else:
        samples = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - t) * 1e3)
    samples.sort()
    return samples[len(samples) // 2]


def main():
    device = "cuda" if torch.cuda.is_available() else "cpu"
    rows, vocab = (512, 50257) if device == "cuda" else (16, 2003)
    gen = torch.Generator(device="cpu").manual_seed(0)
    logits = torch.randn(rows, vocab, generator=gen).to(device)
    tokens = torch.randint(0, vocab, (rows,), generator=gen).to(device)
    copy_target = torch.empty_like(logits)
    nbytes = logits.numel() * 4
    print(f"device: {torch.cuda.get_device_name(0) if device == 'cuda' else 'cpu'}; torch {torch.__version__}")

    ms = timed(lambda: copy_target.copy_(logits), device)
    print(f"copy [{rows}x{vocab}]: {ms:.3f} ms, {2 * nbytes / ms / 1e6:.1f} GB/s")

    def token_stats():
        logp = torch.log_softmax(logits, dim=-1)
        picked = logp.gather(-1, tokens[:, None]).squeeze(-1)
        entropy = -(logp.exp() * logp).sum(-1)
        return picked, entropy

    ms = timed(token_stats, device)
    print(f"log_softmax+gather+entropy [{rows}x{vocab}]: {ms:.3f} ms, {nbytes / ms / 1e6:.1f} GB/s of logits read")

    def token_stats_backward():
        x = logits.detach().requires_grad_(True)
        logp = torch.log_softmax(x, dim=-1)
        picked = logp.gather(-1, tokens[:, None]).squeeze(-1)
        entropy = -(logp.exp() * logp).sum(-1)
        (picked.sum() + 0.01 * entropy.sum()).backward()
        return x.grad

    ms = timed(token_stats_backward, device)
    print(f"token stats forward+backward [{rows}x{vocab}]: {ms:.3f} ms")
    del copy_target, logits
    gpt2_training_step(device)


class Block(nn.Module):
    """GPT-2 block (pre-LN, GELU-tanh MLP), the math of the engine's TransformerModel."""

    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.ln_1, self.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.c_attn, self.c_proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.c_fc, self.mlp_proj = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        if hasattr(F, "scaled_dot_product_attention"):
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            att = (q @ k.transpose(-2, -1)) / math.sqrt(k.size(-1))
            causal = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
            y = att.masked_fill(~causal, float("-inf")).softmax(-1) @ v
        x = x + self.c_proj(y.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class Gpt2(nn.Module):
    def __init__(self, vocab, ctx, d, layers, heads):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(ctx, d)
        self.h = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)

    def forward(self, idx, targets):
        x = self.wte(idx) + self.wpe(torch.arange(idx.size(1), device=idx.device))
        for block in self.h:
            x = block(x)
        logits = self.ln_f(x) @ self.wte.weight.t()  # tied head, as GPT-2
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def gpt2_training_step(device):
    """The DeviceBench GPT-2 step (forward, cross-entropy, backward, AdamW) in fp32 eager; TF32 as a second line on CUDA."""
    full = device == "cuda"
    vocab, ctx, d, layers, heads, batch, seq = (50257, 1024, 768, 12, 12, 8, 1024) if full else (101, 16, 32, 2, 2, 2, 16)
    torch.manual_seed(0)
    model = Gpt2(vocab, ctx, d, layers, heads).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    idx = torch.randint(0, vocab, (batch, seq), device=device)
    targets = torch.randint(0, vocab, (batch, seq), device=device)
    params = sum(p.numel() for p in model.parameters())
    flops = 6.0 * params * batch * seq + 6.0 * layers * seq * d * batch * seq

    def step():
        opt.zero_grad(set_to_none=True)
        model(idx, targets).backward()
        opt.step()

    modes = [("fp32", False)] + ([("tf32", True)] if full else [])
    for name, tf32 in modes:
        if full:
            torch.backends.cuda.matmul.allow_tf32 = tf32
            torch.backends.cudnn.allow_tf32 = tf32
        ms = timed(step, device, repeats=10 if full else 20)
        print(f"GPT-2 training step {'124M' if full else 'tiny'} batch {batch}x{seq} {name} eager: {ms:.3f} ms, "
              f"{flops / (ms * 1e-3) / 1e12:.2f} TFLOP/s model FLOPs")


if __name__ == "__main__":
    main()
