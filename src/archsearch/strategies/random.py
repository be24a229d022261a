"""Random search: the baseline every NAS result must beat (Li & Talwalkar, UAI 2019; Yang et al., ICLR 2020)."""
from __future__ import annotations

from ..space import Architecture
from .base import Strategy, register_strategy


@register_strategy("random")
class RandomSearch(Strategy):
    """Uniform samples from the space, independent of every result."""

    objectives = frozenset({"single", "vector"})  # (it reads no value: any objective)
    reads_results = False

    def _ask(self) -> Architecture:
        return self.space.sample(self.rng)
