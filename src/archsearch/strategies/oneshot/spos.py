"""SPOS / random one-shot: Guo et al., "Single Path One-Shot Neural Architecture Search with Uniform Sampling",
ECCV 2020 (and Li & Talwalkar's random search with weight sharing, UAI 2019).

Supernet training decoupled from the search: every step trains one architecture drawn uniformly from the space
(its single path through the supernet); there is no α. The architecture is then found by evolution
(:class:`~archsearch.strategies.evolution.RegularizedEvolution`) over ``derive_trials`` architectures, each scored
by its validation accuracy with the inherited weights after recalibrating BN statistics on a few training batches.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...result import Observation
from ...space import Architecture
from ..evolution import RegularizedEvolution
from .base import OneShotOptions, OneShotStrategy, register_oneshot


@dataclass
class SPOSOptions(OneShotOptions):
    derive_trials: int = 40  # architectures the final evolutionary search scores with the shared weights
    population: int = 10
    sample_size: int = 3


@register_oneshot("spos")
class SPOS(OneShotStrategy):
    """Uniform single-path supernet training, then evolution with weight-sharing accuracy."""

    Options = SPOSOptions
    searches_alpha = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        probe = np.random.default_rng([self.seed, 7])  # fixed paths whose accuracy tracks the training
        self.probes = [self.supernet.sample(probe) for _ in range(3)]
        self._derived: tuple[int, Architecture] | None = None

    def step(self, xt, yt, xv, yv) -> float:
        self.state.set("path", self.supernet.path_of(self.supernet.sample(self.rng)))
        return self.w_step(xt, yt)

    def supernet_accuracy(self) -> float:
        """Mean validation accuracy of three fixed random architectures on the shared weights."""
        return float(np.mean([self.path_accuracy(a) for a in self.probes]))

    def epoch_architecture(self) -> Architecture | None:
        return None  # deriving runs an evolutionary search: only at the end

    def derive(self) -> Architecture:
        if self._derived is not None and self._derived[0] == self.epoch:
            return self._derived[1]
        evo = RegularizedEvolution(self.space, seed=self.seed, population=self.opts.population,
                                   sample_size=self.opts.sample_size)
        scores: dict[Architecture, float] = {}
        for t in range(self.opts.derive_trials):
            arch = self.supernet.with_values(evo.ask())
            if arch not in scores:
                scores[arch] = self.path_accuracy(arch)
            evo.tell(Observation(arch, scores[arch], trial=t))
        best = max(scores, key=lambda a: scores[a])  # first of the best, in the order evaluated
        self._derived = (self.epoch, best)
        return best
