"""Writes test fixtures as JSON: {name: {"shape": [...], "data": [...]}} (float64 values, ints as floats).

CI never runs Python: the fixtures made here are committed under tests/Rlhf.Tests/Fixtures.
Run with Debian's interpreter: /usr/bin/python3 tests/reference/<script>.py
"""
import json
import os

import torch

FIXTURE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Rlhf.Tests", "Fixtures")


def _number(x):
    # JSON has no NaN/Infinity: write them as strings that C#'s double.Parse reads.
    if x != x:
        return "NaN"
    if x in (float("inf"), float("-inf")):
        return "Infinity" if x > 0 else "-Infinity"
    return x


def save(name, tensors):
    """tensors: dict of str -> torch.Tensor | number | list"""
    out = {}
    for key, value in tensors.items():
        t = value if isinstance(value, torch.Tensor) else torch.tensor(value)
        t = t.detach().to(torch.float64).contiguous()
        out[key] = {"shape": list(t.shape), "data": [_number(float(x)) for x in t.reshape(-1).tolist()]}
    os.makedirs(FIXTURE_DIR, exist_ok=True)
    path = os.path.join(FIXTURE_DIR, name + ".json")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(out, f, allow_nan=False)
    os.replace(tmp, path)
    print("wrote", os.path.relpath(path))
