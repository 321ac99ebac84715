"""Oracle for Rlhf.Ppo.PpoTrainer: one PPO iteration of TRL's classic PPOTrainer on a tiny GPT-2, full fine-tuning
with a separate frozen reference model. Given identical weights (policy, reference, value head), rollouts
(left-padded prompts, responses that stop early) and scores, records old/ref log-probs, values, KL, rewards,
advantages (GAE then masked whitening), returns, and two minibatch steps (the whole batch each, loss = clipped
policy loss + vf_coef * clipped value loss - c2 * entropy, clip_grad_norm_, AdamW with weight_decay 0):
losses after each step and every updated weight.

Run: /usr/bin/python3 tests/reference/ppo.py
"""
import math

import torch
import torch.nn.functional as F

from fixtures import save

torch.manual_seed(4321)
torch.set_default_dtype(torch.float32)
V, CTX, D, L, H = 24, 10, 8, 2, 2
HD = D // H
EPS = 1e-5
B, P, R = 3, 3, 5
S = P + R
BETA, GAMMA, LAM, CLIP, VCLIP, VF_COEF, ENT_COEF = 0.2, 0.9, 0.95, 0.2, 0.2, 0.1, 0.01
LR, MAX_NORM = 5e-2, 1.0  # large enough that the second step's ratios and values clip


def make_params(std):
    params = {"transformer.wte.weight": torch.randn(V, D) * std, "transformer.wpe.weight": torch.randn(CTX, D) * std}
    for i in range(L):
        p = f"transformer.h.{i}."
        params[p + "ln_1.weight"] = 1 + 0.1 * torch.randn(D)
        params[p + "ln_1.bias"] = torch.randn(D) * 0.1
        params[p + "attn.c_attn.weight"] = torch.randn(D, 3 * D) * std
        params[p + "attn.c_attn.bias"] = torch.randn(3 * D) * 0.1
        params[p + "attn.c_proj.weight"] = torch.randn(D, D) * std
        params[p + "attn.c_proj.bias"] = torch.randn(D) * 0.1
        params[p + "ln_2.weight"] = 1 + 0.1 * torch.randn(D)
        params[p + "ln_2.bias"] = torch.randn(D) * 0.1
        params[p + "mlp.c_fc.weight"] = torch.randn(D, 4 * D) * std
        params[p + "mlp.c_fc.bias"] = torch.randn(4 * D) * 0.1
        params[p + "mlp.c_proj.weight"] = torch.randn(4 * D, D) * std
        params[p + "mlp.c_proj.bias"] = torch.randn(D) * 0.1
    params["transformer.ln_f.weight"] = 1 + 0.1 * torch.randn(D)
    params["transformer.ln_f.bias"] = torch.randn(D) * 0.1
    return params


policy = {k: v.requires_grad_() for k, v in make_params(0.3).items()}
reference = {k: (v.detach() + 0.05 * torch.randn_like(v)) for k, v in policy.items()}
v_head_w = (torch.randn(1, D) * 0.3).requires_grad_()
v_head_b = (torch.randn(1) * 0.1).requires_grad_()

# Rollouts: row 1 has a left-padded prompt; rows 1 and 2 stopped early (mask 0 after their last token).
tokens = torch.randint(1, V, (B, S))
mask = torch.ones(B, S)
mask[1, 0] = 0
tokens[1, 0] = 0
resp_mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 1, 1, 0]], dtype=torch.float32)
mask[:, P:] = resp_mask
tokens[:, P:] = tokens[:, P:] * resp_mask.long()
scores = torch.tensor([0.7, -1.3, 2.1])
positions = (mask.cumsum(-1) - 1).clamp(min=0).long()


def attention(q, k, v, m):
    t = q.shape[2]
    s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    causal = torch.tril(torch.ones(t, t, dtype=torch.bool))
    allowed = causal[None, None] & (m[:, None, None, :] > 0)
    s = s.masked_fill(~allowed, torch.finfo(torch.float32).min)
    probs = torch.softmax(s, dim=-1) * allowed.any(-1, keepdim=True)
    return probs @ v


def forward(Pm):
    x = Pm["transformer.wte.weight"][tokens] + Pm["transformer.wpe.weight"][positions]
    for i in range(L):
        p = f"transformer.h.{i}."
        h = F.layer_norm(x, (D,), Pm[p + "ln_1.weight"], Pm[p + "ln_1.bias"], EPS)
        qkv = h @ Pm[p + "attn.c_attn.weight"] + Pm[p + "attn.c_attn.bias"]
        q, k, v = qkv.split(D, dim=-1)
        q, k, v = (t.view(B, S, H, HD).transpose(1, 2) for t in (q, k, v))
        a = attention(q, k, v, mask).transpose(1, 2).reshape(B, S, D)
        x = x + a @ Pm[p + "attn.c_proj.weight"] + Pm[p + "attn.c_proj.bias"]
        h = F.layer_norm(x, (D,), Pm[p + "ln_2.weight"], Pm[p + "ln_2.bias"], EPS)
        m = F.gelu(h @ Pm[p + "mlp.c_fc.weight"] + Pm[p + "mlp.c_fc.bias"], approximate="tanh")
        x = x + m @ Pm[p + "mlp.c_proj.weight"] + Pm[p + "mlp.c_proj.bias"]
    hidden = F.layer_norm(x, (D,), Pm["transformer.ln_f.weight"], Pm["transformer.ln_f.bias"], EPS)
    return hidden @ Pm["transformer.wte.weight"].T, hidden


def response_stats(Pm):
    logits, hidden = forward(Pm)
    lg = logits[:, P - 1:P - 1 + R]  # TRL: logits[:, :-1] predict input_ids[:, 1:]
    logp_all = F.log_softmax(lg, dim=-1)
    logp = torch.gather(logp_all, 2, tokens[:, P:].unsqueeze(-1)).squeeze(-1)
    entropy = -(logp_all.exp() * logp_all).sum(-1)
    values = (hidden[:, P - 1:P - 1 + R] @ v_head_w.T).squeeze(-1) + v_head_b
    return logp, entropy, values


def masked_mean(x, m):
    return (x * m).sum() / m.sum()


def masked_var(x, m):
    mean = masked_mean(x, m)
    var = masked_mean((x - mean) ** 2, m)
    return var * m.sum() / (m.sum() - 1)


def masked_whiten(x, m):
    return (x - masked_mean(x, m)) * torch.rsqrt(masked_var(x, m) + 1e-8)


with torch.no_grad():
    old_logp, _, old_values = response_stats(policy)
    ref_logp, _, _ = response_stats(reference)
    old_logp, old_values, ref_logp = old_logp * resp_mask, old_values * resp_mask, ref_logp * resp_mask
    kl = old_logp - ref_logp
    rewards = -BETA * kl
    last = resp_mask.sum(1).long() - 1
    rewards[torch.arange(B), last] += scores
    rewards = rewards * resp_mask
    values = old_values * resp_mask
    lastgaelam = torch.zeros(B)
    adv_rev = []
    for t in reversed(range(R)):
        nextvalues = values[:, t + 1] if t < R - 1 else 0.0
        delta = rewards[:, t] + GAMMA * nextvalues - values[:, t]
        lastgaelam = delta + GAMMA * LAM * lastgaelam
        adv_rev.append(lastgaelam)
    advantages = torch.stack(adv_rev[::-1], dim=1)
    returns = (advantages + values) * resp_mask
    advantages = masked_whiten(advantages, resp_mask) * resp_mask
    mean_kl = (kl * resp_mask).sum(1).mean()

trained = list(policy.values()) + [v_head_w, v_head_b]
opt = torch.optim.AdamW(trained, lr=LR, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
out = {"tokens": tokens, "mask": mask, "resp_mask": resp_mask, "scores": scores, "P": P, "R": R,
       "old_logp": old_logp, "ref_logp": ref_logp, "old_values": old_values, "kl": kl, "rewards": rewards,
       "advantages": advantages, "returns": returns, "mean_kl": mean_kl,
       "v_head.weight": v_head_w.detach().clone(), "v_head.bias": v_head_b.detach().clone()}
for name, t in policy.items():
    out["param." + name] = t.detach().clone()
    out["ref." + name] = reference[name]

for step in range(2):
    opt.zero_grad()
    logp, entropy, vpred = response_stats(policy)
    vclipped = torch.max(torch.min(vpred, old_values + VCLIP), old_values - VCLIP)
    vf_loss = 0.5 * masked_mean(torch.max((vpred - returns) ** 2, (vclipped - returns) ** 2), resp_mask)
    ratio = torch.exp(logp - old_logp)
    pg_loss = masked_mean(torch.max(-advantages * ratio, -advantages * torch.clamp(ratio, 1 - CLIP, 1 + CLIP)), resp_mask)
    ent = masked_mean(entropy, resp_mask)
    loss = pg_loss + VF_COEF * vf_loss - ENT_COEF * ent
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(trained, MAX_NORM)
    opt.step()
    out[f"step{step}.pg_loss"] = pg_loss
    out[f"step{step}.vf_loss"] = vf_loss
    out[f"step{step}.entropy"] = ent
    out[f"step{step}.loss"] = loss
    out[f"step{step}.grad_norm"] = norm
    out[f"step{step}.approx_kl"] = 0.5 * masked_mean((logp - old_logp) ** 2, resp_mask)
    out[f"step{step}.clipfrac"] = masked_mean(torch.gt(-advantages * torch.clamp(ratio, 1 - CLIP, 1 + CLIP), -advantages * ratio).float(), resp_mask)
    out[f"step{step}.vf_clipfrac"] = masked_mean(((vclipped - returns) ** 2 > (vpred - returns) ** 2).float(), resp_mask)

for name, t in policy.items():
    out["updated." + name] = t.detach().clone()
out["updated.v_head.weight"] = v_head_w.detach().clone()
out["updated.v_head.bias"] = v_head_b.detach().clone()
save("ppo_step", out)
