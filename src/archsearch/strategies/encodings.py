"""Numeric encodings of architectures for model-based strategies (Bayesian optimisation, predictors).

Every space gets the *one-hot* encoding (``SearchSpace.encode``: one-hot per op/value decision, multi-hot per
input decision). Squared Euclidean distance between one-hot vectors is twice the choice-wise Hamming distance, so
a stationary kernel on it is a kernel on the Hamming distance between architectures.

A space may register a better encoder by name (``@register_encoder("nb201")``); a registered encoder is
concatenated to the one-hot vector, never substituted for it, so distinct architectures stay distinct. Built in:

* ``nb201``: the *path encoding* of BANANAS (White, Neiswanger & Savani, "BANANAS: Bayesian Optimization with
  Neural Architectures for Neural Architecture Search", AAAI 2021): one bit per sequence of ops along an
  input-to-output path of the cell. Two cells computing through the same op paths are close even when their
  dead edges differ; White et al. ("A Study on Encodings for Neural Architecture Search", NeurIPS 2020) found
  it the best encoding for model-based search on cell spaces.

An encoder is a plain function ``f(space, arch) -> np.ndarray`` (fixed length per space); it may return None
for a space it does not recognise (a user's space that happens to share the name), which falls back to one-hot.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..registry import Registry
from ..space import Architecture, SearchSpace

__all__ = ["ENCODERS", "Encoder", "nb201_path_encoding", "register_encoder"]

EncoderFn = Callable[[SearchSpace, Architecture], "np.ndarray | None"]
ENCODERS: Registry[EncoderFn] = Registry("encoder")
MODES = ("both", "one-hot", "extra")  # one-hot plus the registered encoding; one-hot alone; the registered alone


def register_encoder(space_name: str):
    """Register an extra encoding for the space registered as ``space_name``."""
    return ENCODERS.register(space_name)


class Encoder:
    """Encodes architectures of one space as float64 vectors (one-hot, plus the space's registered encoding),
    with a cache (model-based strategies encode the same candidates again and again)."""

    def __init__(self, space: SearchSpace, mode: str = "both", cache_size: int = 100_000):
        if mode not in MODES:
            raise ValueError(f"encoding mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.space = space
        fn = ENCODERS.get(space.name) if mode != "one-hot" and space.name in ENCODERS else None
        probe = space.sample(np.random.default_rng(0))
        if fn is not None and fn(space, probe) is None:
            fn = None
        self.extra_fn = fn
        self.one_hot = fn is None or mode == "both"
        self.name = "+".join(["one-hot"] * self.one_hot + [space.name] * (fn is not None))
        self._cache: dict[Architecture, np.ndarray] = {}
        self._cache_size = cache_size
        self.width = len(self(probe))
        self.one_hot_width = len(space.encode(probe)) if self.one_hot else 0  # the one-hot part comes first

    def __call__(self, arch: Architecture) -> np.ndarray:
        got = self._cache.get(arch)
        if got is None:
            parts = [self.space.encode(arch).astype(np.float64)] if self.one_hot else []
            if self.extra_fn is not None:
                parts.append(np.asarray(self.extra_fn(self.space, arch), dtype=np.float64))
            got = np.concatenate(parts)
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            self._cache[arch] = got
        return got

    def many(self, archs: list[Architecture]) -> np.ndarray:
        if not archs:
            return np.zeros((0, self.width))
        return np.stack([self(a) for a in archs])


# ---- NAS-Bench-201 path encoding ------------------------------------------------------------------------------
_NB201_PATHS = (("3<-0",), ("1<-0", "3<-1"), ("2<-0", "3<-2"), ("1<-0", "2<-1", "3<-2"))  # node 0 -> node 3
_NB201_LABELS = frozenset(e for p in _NB201_PATHS for e in p)


def nb201_path_encoding(space: SearchSpace, arch: Architecture) -> np.ndarray | None:
    """BANANAS path encoding of a NAS-Bench-201 cell: one bit per op sequence of length 1..3 ('none' cuts a
    path), 4 + 16 + 64 = 84 bits. None for a space whose decisions are not the six NB201 edges."""
    if set(space.labels) != _NB201_LABELS:
        return None
    ops = [o for o in space.decision("1<-0").options if o != "none"]
    index = {o: i for i, o in enumerate(ops)}
    k = len(ops)
    vec = np.zeros(k + k ** 2 + k ** 3)
    for path in _NB201_PATHS:
        seq = [arch[e] for e in path]
        if "none" in seq:
            continue
        pos = 0
        for op in seq:
            pos = pos * k + index[op]
        vec[sum(k ** n for n in range(1, len(seq))) + pos] = 1.0
    return vec


register_encoder("nb201")(nb201_path_encoding)
