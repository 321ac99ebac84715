"""Fixtures for Rlhf.Tests.Formats / Rlhf.Tests.Tokenizers.

- formats_permute: HF's convert_llama_weights_to_hf.py `permute` on a small random q/k projection.
- formats_llama2c_tokenizer: token ids from a literal Python port of llama2.c run.c `encode`
  (O(n^3), no caching: independent of the C# implementation) on tok512.bin, texts stored as UTF-8 bytes.
- formats_stories260k: header, per-tensor sums and slices of stories260K.bin read with struct + torch,
  converted with HF's permute.

Run: /usr/bin/python3 tests/reference/formats.py   (needs ../shared/data/tinyllamas-stories260K)
"""
import os
import struct

import torch

from fixtures import save

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "..", "shared", "data", "tinyllamas-stories260K")


def permute(w, n_heads, dim1, dim2):
    # transformers/models/llama/convert_llama_weights_to_hf.py
    return w.view(n_heads, dim1 // n_heads // 2, 2, dim2).transpose(1, 2).reshape(dim1, dim2)


def fixture_permute():
    g = torch.Generator().manual_seed(7)
    n_heads, head, cols = 3, 6, 5
    w = torch.randn(n_heads * head, cols, generator=g)
    save("formats_permute", {"w": w, "w_hf": permute(w, n_heads, n_heads * head, cols), "n_heads": float(n_heads)})


# ---- llama2.c tokenizer: literal port of run.c ----

def load_tokenizer(path):
    with open(path, "rb") as f:
        data = f.read()
    (max_len,) = struct.unpack_from("<i", data, 0)
    pos = 4
    vocab, scores = [], []
    while pos < len(data):
        score, n = struct.unpack_from("<fi", data, pos)
        pos += 8
        vocab.append(data[pos:pos + n])
        scores.append(score)
        pos += n
    return vocab, scores


def encode(vocab, scores, text, bos, eos):
    lookup = {}
    for i, piece in enumerate(vocab):
        lookup.setdefault(piece, i)
    tokens = []
    if bos:
        tokens.append(1)
    raw = text.encode("utf-8")
    if raw:
        tokens.append(lookup[b" "])
    buf = b""
    for i, c in enumerate(raw):
        if (c & 0xC0) != 0x80:
            buf = b""
        buf += bytes([c])
        nxt = raw[i + 1] if i + 1 < len(raw) else 0
        if (nxt & 0xC0) == 0x80 and len(buf) < 4:
            continue
        if buf in lookup:
            tokens.append(lookup[buf])
        else:
            tokens.extend(b + 3 for b in buf)
        buf = b""
    while True:
        best_score, best_id, best_idx = -1e10, -1, -1
        for i in range(len(tokens) - 1):
            merged = vocab[tokens[i]] + vocab[tokens[i + 1]]
            j = lookup.get(merged, -1)
            if j != -1 and scores[j] > best_score:
                best_score, best_id, best_idx = scores[j], j, i
        if best_idx == -1:
            break
        tokens[best_idx:best_idx + 2] = [best_id]
    if eos:
        tokens.append(2)
    return tokens


TEXTS = [
    "Once upon a time, there was a little girl.",
    "Lily's mom said, \"Let's go to the park.\"\nThe end.",
    "Café naïve — 日本 🙂 zebra!",
    "  two leading spaces",
    "",
]


def fixture_tokenizer():
    vocab, scores = load_tokenizer(os.path.join(DATA, "tok512.bin"))
    out = {"vocab_size": float(len(vocab))}
    for k, text in enumerate(TEXTS):
        out[f"text{k}"] = list(text.encode("utf-8")) or []
        out[f"ids{k}"] = encode(vocab, scores, text, False, False) or []
        out[f"ids_bos_eos{k}"] = encode(vocab, scores, text, True, True)
    out = {k: (torch.tensor(v, dtype=torch.float64) if isinstance(v, list) else v) for k, v in out.items()}
    save("formats_llama2c_tokenizer", out)


def fixture_stories():
    with open(os.path.join(DATA, "stories260K.bin"), "rb") as f:
        data = f.read()
    dim, hidden, L, H, KV, V, S = struct.unpack_from("<7i", data, 0)
    shared = V > 0
    V = abs(V)
    hs = dim // H
    kv = hs * KV
    w = torch.frombuffer(bytearray(data[28:]), dtype=torch.float32)
    pos = 0

    def take(*shape):
        nonlocal pos
        n = 1
        for s in shape:
            n *= s
        t = w[pos:pos + n].reshape(shape)
        pos += n
        return t

    emb = take(V, dim)
    rms_att = take(L, dim)
    wq = take(L, dim, dim)
    wk = take(L, kv, dim)
    wv = take(L, kv, dim)
    wo = take(L, dim, dim)
    rms_ffn = take(L, dim)
    w1 = take(L, hidden, dim)
    w2 = take(L, dim, hidden)
    w3 = take(L, hidden, dim)
    norm = take(dim)
    take(S * hs // 2)
    take(S * hs // 2)
    assert pos == w.numel() or not shared
    out = {"header": [dim, hidden, L, H, KV, V, S, 1 if shared else 0]}
    named = {"model.embed_tokens.weight": emb, "model.norm.weight": norm}
    for i in range(L):
        p = f"model.layers.{i}."
        named[p + "input_layernorm.weight"] = rms_att[i]
        named[p + "self_attn.q_proj.weight"] = permute(wq[i], H, dim, dim)
        named[p + "self_attn.k_proj.weight"] = permute(wk[i], KV, kv, dim)
        named[p + "self_attn.v_proj.weight"] = wv[i]
        named[p + "self_attn.o_proj.weight"] = wo[i]
        named[p + "post_attention_layernorm.weight"] = rms_ffn[i]
        named[p + "mlp.gate_proj.weight"] = w1[i]
        named[p + "mlp.down_proj.weight"] = w2[i]
        named[p + "mlp.up_proj.weight"] = w3[i]
    names = sorted(named)
    # Weighted sums depend on the element order, so a wrong permutation changes them.
    out["sums"] = torch.tensor([float((named[n].double().reshape(-1) * torch.arange(1, named[n].numel() + 1, dtype=torch.float64)).sum()) for n in names], dtype=torch.float64)
    out["count"] = float(len(names))
    out["q1_rows0_8"] = named["model.layers.1.self_attn.q_proj.weight"][:8]
    out["k4"] = named["model.layers.4.self_attn.k_proj.weight"]
    save("formats_stories260k", out)
    with open(os.path.join(HERE, "..", "Rlhf.Tests", "Fixtures", "formats_stories260k_names.txt"), "w") as f:
        f.write("\n".join(names) + "\n")


if __name__ == "__main__":
    fixture_permute()
    fixture_tokenizer()
    fixture_stories()
