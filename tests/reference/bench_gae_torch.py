"""Peer timing for the GAE kernel: TRL's compute_advantages loop (a Python loop over time steps of torch ops)
over [256 x 512] float32, CPU, PyTorch's own threads limited to 1 and then 2.

Run: /usr/bin/python3 tests/reference/bench_gae_torch.py   (prints milliseconds; compare with GaeBenchmarks)
"""
import time

import torch

B, T = 256, 512


def compute_advantages(values, rewards, mask, gamma, lam):
    # trl/trainer/ppo_trainer.py, PPOTrainer.compute_advantages, without the whitening.
    lastgaelam = 0
    advantages_reversed = []
    gen_len = rewards.shape[-1]
    values = values * mask
    rewards = rewards * mask
    for t in reversed(range(gen_len)):
        nextvalues = values[:, t + 1] if t < gen_len - 1 else 0.0
        delta = rewards[:, t] + gamma * nextvalues - values[:, t]
        lastgaelam = delta + gamma * lam * lastgaelam
        advantages_reversed.append(lastgaelam)
    advantages = torch.stack(advantages_reversed[::-1]).transpose(0, 1)
    returns = advantages + values
    return values, advantages, returns


def main():
    g = torch.Generator().manual_seed(0)
    rewards = torch.rand(B, T, generator=g) - 0.5
    values = torch.rand(B, T, generator=g) - 0.5
    # The suite's "padded" batch: row b valid for a random T/2..T steps, then padding (the loop's cost does not
    # depend on it; the kernel skips whole padding blocks).
    lengths = torch.randint(T // 2, T + 1, (B,), generator=g)
    mask = (torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)).float()
    for threads in (1, 2):
        torch.set_num_threads(threads)
        with torch.no_grad():
            for _ in range(3):
                compute_advantages(values, rewards, mask, 0.99, 0.95)
            times = []
            for _ in range(20):
                t0 = time.perf_counter()
                compute_advantages(values, rewards, mask, 0.99, 0.95)
                times.append(time.perf_counter() - t0)
        times.sort()
        print(f"torch {torch.__version__} TRL GAE loop [{B}x{T}] threads={threads}: "
              f"median {1e3 * times[len(times) // 2]:.2f} ms, min {1e3 * times[0]:.2f} ms")


if __name__ == "__main__":
    main()
