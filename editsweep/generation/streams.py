"""Counter-based random numbers: one independent stream per (prompt seed, sample index).

A sampled token must not depend on which other problems share its batch, on the batch order,
or on how many samples were asked for, and drawing it must not need a host sync or a
per-sequence `torch.Generator` (neither fits a CUDA graph). So the uniform used at decoding step
t of sequence (seed, j) is a pure function hash(key(seed, j), t), computed with exact integer
arithmetic on the device: the same on CPU and GPU, for any batch layout.

The hash is a 32-bit integer finaliser (xor-shift / multiply rounds, "lowbias32" constants);
multiplications are split into 16-bit halves so that no int64 product overflows.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

__all__ = ["stream_keys", "uniforms", "derive_seed"]

_MASK32 = 0xFFFFFFFF
_GOLDEN = 0x9E3779B9


def derive_seed(*parts: object) -> int:
    """A stable 63-bit seed from any printable parts (e.g. base seed, cell id, problem id)."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def stream_keys(seeds: Sequence[int], n: int) -> list[tuple[int, int]]:
    """Two 32-bit key words for each (seed, j), j < n, prompt-major: seeds[0] j=0..n-1, seeds[1] …"""
    keys = []
    for seed in seeds:
        for j in range(n):
            digest = hashlib.blake2b(f"{int(seed)}:{j}".encode(), digest_size=8).digest()
            keys.append((int.from_bytes(digest[:4], "little"), int.from_bytes(digest[4:], "little")))
    return keys


def _mul32(x, c: int):
    """(x * c) mod 2**32 for int64 tensors holding values < 2**32, without overflow."""
    lo = x & 0xFFFF
    hi = x >> 16
    return (lo * c + (((hi * c) & 0xFFFF) << 16)) & _MASK32


def _hash32(x):
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def uniforms(keys, step):
    """Uniforms in [0, 1) (24-bit, float32) for int64 `keys` [N, 2] at `step` (int64 tensor, any shape broadcastable to [N])."""
    import torch

    mixed = _hash32((keys[:, 1] + _mul32(step & _MASK32, _GOLDEN)) & _MASK32)
    bits = _hash32(keys[:, 0] ^ mixed)
    return (bits >> 8).to(torch.float32) * (1.0 / (1 << 24))
