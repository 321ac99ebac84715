"""Fixture for the reward model's pairwise loss: -[p log σ(Δ) + (1-p) log σ(-Δ)], Δ = r_c - r_r - margin (TRL's
RewardTrainer loss when p = 1), with gradients from autograd.

    /usr/bin/python3 tests/reference/reward.py
"""
import torch
import torch.nn.functional as F

from fixtures import save

torch.manual_seed(3)
n = 16
chosen = (torch.randn(n) * 3).float().requires_grad_(True)
rejected = (torch.randn(n) * 3).float().requires_grad_(True)
margins = torch.rand(n).float()
prefs = torch.rand(n).float()
prefs[:4] = 1.0  # hard labels too

delta = chosen.double() - rejected.double() - margins.double()
p = prefs.double()
loss = -(p * F.logsigmoid(delta) + (1 - p) * F.logsigmoid(-delta)).mean()
loss.backward()
save("reward_pairwise_loss", {
    "chosen": chosen, "rejected": rejected, "margins": margins, "preferences": prefs,
    "loss": loss, "grad_chosen": chosen.grad, "grad_rejected": rejected.grad,
})
