"""PyTorch oracle for the PPO kernels: TRL 0.x PPOTrainer formulas (masked_mean, masked_var, masked_whiten,
compute_rewards, compute_advantages, loss) and torch.optim.AdamW / clip_grad_norm_.

Writes tests/Rlhf.Tests/Fixtures/ppo_*.json. Run: /usr/bin/python3 tests/reference/kernels_ppo.py
The formulas are written out here as in trl/core.py and trl/trainer/ppo_trainer.py; inputs are float32 values,
the oracle arithmetic is float64 (except AdamW / clipping, which run PyTorch's own float32 code).
"""
import torch

from fixtures import save

B, T = 4, 37


# --- trl/core.py -------------------------------------------------------------------------------------------
def masked_mean(values, mask, axis=None):
    if axis is not None:
        return (values * mask).sum(axis=axis) / mask.sum(axis=axis)
    return (values * mask).sum() / mask.sum()


def masked_var(values, mask, unbiased=True):
    mean = masked_mean(values, mask)
    centered_values = values - mean
    variance = masked_mean(centered_values**2, mask)
    if unbiased:
        mask_sum = mask.sum()
        if mask_sum == 0:
            raise ValueError("empty mask")
        variance = variance * (mask_sum / (mask_sum - 1))
    return variance


def masked_whiten(values, mask, shift_mean=True):
    mean, var = masked_mean(values, mask), masked_var(values, mask)
    whitened = (values - mean) * torch.rsqrt(var + 1e-8)
    if not shift_mean:
        whitened += mean
    return whitened


def clip_by_value(x, tensor_min, tensor_max):
    return torch.max(torch.min(x, tensor_max), tensor_min)


# --- trl/trainer/ppo_trainer.py ------------------------------------------------------------------------------
def compute_rewards(scores, logprobs, ref_logprobs, masks, kl_coef):
    rewards = []
    for score, logprob, ref_logprob, mask in zip(scores, logprobs, ref_logprobs, masks):
        kl = logprob - ref_logprob  # kl_penalty == "kl"
        reward = -kl_coef * kl
        nz = mask.nonzero()
        if len(nz) > 0:  # TRL would fail on a row without response tokens; the kernel leaves it at 0
            reward[nz[-1]] += score
        rewards.append(reward)
    return torch.stack(rewards)


def compute_advantages(values, rewards, mask, gamma, lam):
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


def policy_loss(old_logprobs, logprobs, advantages, mask, cliprange):
    ratio = torch.exp(logprobs - old_logprobs)
    pg_losses = -advantages * ratio
    pg_losses2 = -advantages * torch.clamp(ratio, 1.0 - cliprange, 1.0 + cliprange)
    pg_loss = masked_mean(torch.max(pg_losses, pg_losses2), mask)
    pg_clipfrac = masked_mean(torch.gt(pg_losses2, pg_losses).double(), mask)
    approxkl = 0.5 * masked_mean((logprobs - old_logprobs) ** 2, mask)
    return pg_loss, pg_clipfrac, approxkl, masked_mean(ratio, mask)


def value_loss(values, vpreds, returns, mask, cliprange_value):
    vpredclipped = clip_by_value(vpreds, values - cliprange_value, values + cliprange_value)
    vf_losses1 = (vpreds - returns) ** 2
    vf_losses2 = (vpredclipped - returns) ** 2
    vf_loss = 0.5 * masked_mean(torch.max(vf_losses1, vf_losses2), mask)
    vf_clipfrac = masked_mean(torch.gt(vf_losses2, vf_losses1).double(), mask)
    return vf_loss, vf_clipfrac, masked_mean(vf_losses1, mask)


def f32(t):
    """float32-representable values held as float64, so C# sees exactly the oracle's inputs."""
    return t.float().double()


def f64(x):
    return torch.tensor(x, dtype=torch.float64)


def make_mask():
    mask = torch.ones(B, T, dtype=torch.float64)
    mask[1, :5] = 0  # left padding (query side)
    mask[1, -7:] = 0  # right padding
    mask[2, :] = 0  # a row without response tokens
    mask[3, 10:15] = 0  # an interior gap: the chain is carried through it
    mask[3, -3:] = 0
    return mask


def main():
    g = torch.Generator().manual_seed(1234)
    mask = make_mask()

    # PPO losses: log-ratios up to ±1.5 so many tokens sit far outside the clip range.
    old = f32(-3 * torch.rand(B, T, generator=g, dtype=torch.float64))
    new = f32(old + 1.5 * (2 * torch.rand(B, T, generator=g, dtype=torch.float64) - 1))
    adv = f32(torch.randn(B, T, generator=g, dtype=torch.float64))
    values = f32(torch.randn(B, T, generator=g, dtype=torch.float64))
    vpreds = f32(values + 0.5 * torch.randn(B, T, generator=g, dtype=torch.float64))
    returns = f32(torch.randn(B, T, generator=g, dtype=torch.float64))
    cliprange, cliprange_value = 0.2, 0.2

    new_req = new.clone().requires_grad_(True)
    pg_loss, pg_clipfrac, approxkl, mean_ratio = policy_loss(old, new_req, adv, mask, cliprange)
    (pg_grad,) = torch.autograd.grad(pg_loss, new_req)
    vp_req = vpreds.clone().requires_grad_(True)
    vf_loss, vf_clipfrac, vf_error = value_loss(values, vp_req, returns, mask, cliprange_value)
    (vf_grad,) = torch.autograd.grad(vf_loss, vp_req)
    vp_req2 = vpreds.clone().requires_grad_(True)
    vf_loss_noclip = 0.5 * masked_mean((vp_req2 - returns) ** 2, mask)
    (vf_grad_noclip,) = torch.autograd.grad(vf_loss_noclip, vp_req2)
    save("ppo_loss", {
        "shape": [B, T], "cliprange": cliprange, "cliprange_value": cliprange_value, "mask": mask,
        "old_logprobs": old, "logprobs": new, "advantages": adv,
        "pg_loss": pg_loss, "pg_clipfrac": pg_clipfrac, "approxkl": approxkl, "mean_ratio": mean_ratio, "pg_grad": pg_grad,
        "values": values, "vpreds": vpreds, "returns": returns,
        "vf_loss": vf_loss, "vf_clipfrac": vf_clipfrac, "vf_error": vf_error, "vf_grad": vf_grad,
        "vf_loss_noclip": vf_loss_noclip, "vf_grad_noclip": vf_grad_noclip,
    })

    # Rewards, GAE, whitening.
    logprobs = f32(-3 * torch.rand(B, T, generator=g, dtype=torch.float64))
    ref_logprobs = f32(-3 * torch.rand(B, T, generator=g, dtype=torch.float64))
    scores = f32(2 * torch.randn(B, generator=g, dtype=torch.float64))
    kl_coef = 0.2
    rewards = compute_rewards(scores, logprobs, ref_logprobs, mask, kl_coef) * mask
    gae_values = f32(torch.randn(B, T, generator=g, dtype=torch.float64))
    out = {
        "shape": [B, T], "mask": mask, "logprobs": logprobs, "ref_logprobs": ref_logprobs, "scores": scores,
        "kl_coef": kl_coef, "rewards": rewards, "values": gae_values,
        "rewards_whitened_noshift": masked_whiten(rewards, mask, shift_mean=False),
    }
    rewards32 = f32(rewards)  # the C# GAE test feeds the fixture's float rewards
    out["rewards_f32"] = rewards32
    for name, gamma, lam in (("a", 1.0, 0.95), ("b", 0.9, 0.8), ("c", 0.0, 0.5), ("d", 0.97, 1.0), ("e", 0.99, 0.0)):
        _, advantages, rets = compute_advantages(gae_values, rewards32, mask, gamma, lam)
        out[f"gamma_{name}"] = gamma
        out[f"lam_{name}"] = lam
        out[f"advantages_{name}"] = advantages
        out[f"returns_{name}"] = rets
        out[f"advantages_whitened_{name}"] = masked_whiten(f32(advantages), mask)
    save("ppo_gae", out)

    # AdamW: three steps of PyTorch's own float32 implementation.
    n = 515
    p = torch.randn(n, generator=g, dtype=torch.float64).float()
    p0 = p.clone()
    param = torch.nn.Parameter(p.clone())
    opt = torch.optim.AdamW([param], lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05)
    grads, after = [], []
    for _ in range(3):
        grad = torch.randn(n, generator=g, dtype=torch.float64).float()
        grads.append(grad)
        param.grad = grad.clone()
        opt.step()
        after.append(param.detach().clone())
    state = opt.state[param]
    save("ppo_adamw", {
        # float64 scalars: fixtures.save would round a bare Python float through float32 (0.999 -> 0.99900001).
        "lr": f64(1e-2), "beta1": f64(0.9), "beta2": f64(0.999), "eps": f64(1e-8), "weight_decay": f64(0.05),
        "params0": p0, "grads": torch.stack(grads), "params": torch.stack(after),
        "exp_avg": state["exp_avg"], "exp_avg_sq": state["exp_avg_sq"],
    })

    # clip_grad_norm_ over two buffers; one case clips, one does not.
    a = torch.nn.Parameter(torch.zeros(517))
    b = torch.nn.Parameter(torch.zeros(300))
    ga = torch.randn(517, generator=g, dtype=torch.float64).float()
    gb = torch.randn(300, generator=g, dtype=torch.float64).float()
    out = {"grad_a": ga, "grad_b": gb}
    for name, max_norm in (("clip", 1.0), ("noclip", 1000.0)):
        a.grad, b.grad = ga.clone(), gb.clone()
        norm = torch.nn.utils.clip_grad_norm_([a, b], max_norm)
        out[f"max_norm_{name}"] = max_norm
        out[f"norm_{name}"] = norm
        out[f"clipped_a_{name}"] = a.grad
        out[f"clipped_b_{name}"] = b.grad
    save("ppo_clip_grad_norm", out)


if __name__ == "__main__":
    main()
