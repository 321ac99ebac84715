"""PyTorch eager peer for the GPU report: the same ops at the same shapes, timed with CUDA events.

    python3 benchmarks/gpu/torch_peer.py            # CUDA when available, else CPU at small shapes
"""
import time

import torch


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


if __name__ == "__main__":
    main()
