"""PyTorch oracle for the vocabulary kernels (TokenStatistics, KullbackLeibler).

Writes tests/Rlhf.Tests/Fixtures/vocabulary_*.json. Inputs are float32 (what the kernels read); the oracle runs in
float64 on those exact values: log_softmax + gather, entropy, logsumexp, full-vocabulary KL, the sampled-token
estimators k1/k2/k3, and autograd's d(loss)/d(logits) for loss = sum(g_logp * logp + g_entropy * entropy).
Run: /usr/bin/python3 tests/reference/kernels_vocabulary.py
"""
import torch

from fixtures import save


def case(name, rows, vocab, temperature, scale, banned_fraction, seed):
    g = torch.Generator().manual_seed(seed)
    policy = (torch.rand(rows, vocab, generator=g) * 2 - 1) * scale
    reference = policy + (torch.rand(rows, vocab, generator=g) - 0.5)
    banned = torch.rand(rows, vocab, generator=g) < banned_fraction
    banned[:, 0] = False  # every row keeps an allowed token
    policy = policy.masked_fill(banned, float("-inf")).float()
    reference = reference.masked_fill(banned, float("-inf")).float()
    tokens = torch.stack([torch.multinomial((~banned[i]).double(), 1, generator=g)[0] for i in range(rows)])
    grad_logp = (torch.rand(rows, generator=g) * 2 - 1).float()
    grad_entropy = (torch.rand(rows, generator=g) * 2 - 1).float()

    x = policy.double().requires_grad_(True)
    z = x / temperature
    allowed = torch.isfinite(z)
    logp_all = torch.log_softmax(z, dim=-1)
    p = logp_all.exp()
    logp = logp_all.gather(1, tokens[:, None])[:, 0]
    entropy = -(p * logp_all.masked_fill(~allowed, 0.0)).sum(-1)
    lse = torch.logsumexp(z, dim=-1)
    (grad_logp.double() * logp + grad_entropy.double() * entropy).sum().backward()

    with torch.no_grad():
        logq_all = torch.log_softmax(reference.double() / temperature, dim=-1)
        kl = (p * (logp_all - logq_all).masked_fill(~allowed, 0.0)).sum(-1)
        logq = logq_all.gather(1, tokens[:, None])[:, 0]
        # The estimators read float32 log-probabilities, as the engine stores them.
        logp32, logq32 = logp.detach().float().double(), logq.float().double()
        log_ratio = logq32 - logp32
        k1 = -log_ratio
        k2 = 0.5 * log_ratio ** 2
        k3 = torch.expm1(log_ratio) - log_ratio

    save(name, {
        "policy": policy, "reference": reference, "tokens": tokens, "temperature": temperature,
        "grad_logp": grad_logp, "grad_entropy": grad_entropy,
        "logp": logp, "entropy": entropy, "lse": lse, "dlogits": x.grad,
        "kl": kl, "logp32": logp32, "logq32": logq32, "k1": k1, "k2": k2, "k3": k3,
    })


case("vocabulary_small", rows=4, vocab=37, temperature=0.8, scale=3.0, banned_fraction=0.2, seed=1)
case("vocabulary_wide", rows=3, vocab=300, temperature=1.0, scale=20.0, banned_fraction=0.0, seed=2)
