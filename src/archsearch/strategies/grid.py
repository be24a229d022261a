"""Grid search (``grid``): every architecture of a finite space exactly once (Bergstra & Bengio, "Random Search
for Hyper-Parameter Optimization", JMLR 2012, for why the order is shuffled).

Over categorical decisions the grid is the whole product of the choices, so grid search is exhaustive search.
Visited in the product's natural order, a budget smaller than the space would see only the last decisions vary;
by default the order is a seeded pseudo-random permutation of the product, so any prefix of the run is a uniform
sample without repeats and the whole run is the whole space (``shuffle=False`` gives the natural order).

Nothing is materialised: the k-th architecture is the k-th index of the product (mixed radix) passed through a
keyed bijection (a 4-round Feistel network with cycle walking; Black & Rogaway, "Ciphers with Arbitrary Finite
Domains", CT-RSA 2002), so memory is constant whatever the size. Spaces larger than ``max_size`` (10**10 by
default) are refused with a ValueError: a grid that cannot be finished is random search under another name.
In conditional spaces an index whose inactive decisions are not canonical is skipped, so every distinct model
comes once.

When every architecture has been asked, ``on_exhausted="restart"`` (the default) starts another pass in a new
order, so ``ask`` always answers (repeats are fresh measurements under a noisy evaluator, and the study loop
needs an answer); ``on_exhausted="raise"`` raises :class:`GridExhausted` instead.
"""
from __future__ import annotations

from ..errors import UserError
from ..space import Architecture, SearchSpace
from .base import Strategy, register_strategy

__all__ = ["FeistelPermutation", "GridExhausted", "GridSearch"]

_MASK64 = (1 << 64) - 1


class GridExhausted(UserError):
    """Grid search was asked for more architectures than its space holds (``on_exhausted="raise"``)."""


def _mix64(x: int) -> int:
    """SplitMix64's finaliser (Steele, Lea & Flood, OOPSLA 2014): a fast, well-mixing 64-bit hash."""
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9 & _MASK64
    x = (x ^ (x >> 27)) * 0x94D049BB133111EB & _MASK64
    return x ^ (x >> 31)


class FeistelPermutation:
    """A keyed bijection of ``range(n)``: a balanced Feistel network on the smallest even number of bits that
    covers ``n``, with cycle walking back into range."""

    def __init__(self, n: int, keys: list[int]):
        if n < 1:
            raise ValueError("a permutation needs n >= 1")
        self.n = n
        self.half = max(1, ((n - 1).bit_length() + 1) // 2)
        self.mask = (1 << self.half) - 1
        self.keys = [int(k) & _MASK64 for k in keys]

    def _once(self, x: int) -> int:
        left, right = x >> self.half, x & self.mask
        for k in self.keys:
            left, right = right, left ^ (_mix64((right + k) & _MASK64) & self.mask)
        return (left << self.half) | right

    def __call__(self, i: int) -> int:
        if not 0 <= i < self.n:
            raise IndexError(i)
        x = self._once(i)
        while x >= self.n:
            x = self._once(x)
        return x


@register_strategy("grid")
class GridSearch(Strategy):
    """Exhaustive search in a seeded random order (see the module docstring)."""

    objectives = frozenset({"single", "vector"})  # (it reads no value: any objective)
    reads_results = False

    def __init__(self, space: SearchSpace, seed: int = 0, shuffle: bool = True, max_size: int = 10 ** 10,
                 on_exhausted: str = "restart"):
        super().__init__(space, seed)
        if space.size > max_size:
            raise ValueError(f"grid search: space {space.name!r} has {space.size:,} architectures, more than "
                             f"max_size={max_size:,}; use random search, or raise max_size")
        if on_exhausted not in ("restart", "raise"):
            raise ValueError(f"grid search: on_exhausted must be 'restart' or 'raise', not {on_exhausted!r}")
        self.shuffle = shuffle
        self.on_exhausted = on_exhausted
        self._choices = [d.choices for d in space.decisions]
        self._labels = space.labels
        self.passes = 0
        self._new_pass()

    def _new_pass(self) -> None:
        self.passes += 1
        self.position = 0
        keys = [int(k) for k in self.rng.integers(0, 2 ** 63, size=4)]
        self._perm = FeistelPermutation(self.space.size, keys) if self.shuffle else None

    def architecture(self, index: int) -> Architecture:
        """The ``index``-th architecture of the product in natural order (the last decision varies fastest)."""
        digits = []
        for ch in reversed(self._choices):
            index, r = divmod(index, len(ch))
            digits.append(ch[r])
        return Architecture(zip(self._labels, reversed(digits)))

    def _ask(self) -> Architecture:
        while True:
            if self.position >= self.space.size:
                if self.on_exhausted == "raise":
                    raise GridExhausted(f"grid search has asked all {self.space.size:,} architectures of space "
                                        f"{self.space.name!r}; lower the trial budget")
                self._new_pass()
            i = self.position
            self.position += 1
            arch = self.architecture(self._perm(i) if self._perm is not None else i)
            if not self.space.conditional or self.space.canonical(arch) == arch:
                return arch
