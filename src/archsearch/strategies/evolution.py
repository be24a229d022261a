"""Regularized (aging) evolution: Real et al., "Regularized Evolution for Image Classifier Architecture
Search", AAAI 2019 (AmoebaNet)."""
from __future__ import annotations

from collections import deque

from ..result import Observation
from ..space import Architecture, SearchSpace
from .base import Strategy, register_strategy


@register_strategy("evolution")
class RegularizedEvolution(Strategy):
    """Population of the ``population`` most recent results; each child is a one-decision mutation of the best of
    ``sample_size`` members drawn at random; the oldest member dies. Until the population is full, asks are random
    samples. Asynchronous: tournaments use finished results only, so children can be asked while others run.
    Failed trials never enter the population."""

    def __init__(self, space: SearchSpace, seed: int = 0, population: int = 20, sample_size: int = 5):
        super().__init__(space, seed)
        if population < 1 or not 1 <= sample_size:
            raise ValueError("evolution needs population >= 1 and sample_size >= 1")
        self.population_size = population
        self.sample_size = sample_size
        self.population: deque[Observation] = deque()
        self.n_asked = 0

    def _ask(self) -> Architecture:
        self.n_asked += 1
        if self.n_asked <= self.population_size or not self.population:
            return self.space.sample(self.rng)
        k = min(self.sample_size, len(self.population))
        idx = self.rng.choice(len(self.population), size=k, replace=False)
        parent = max((self.population[int(i)] for i in idx), key=lambda o: o.value)
        return self.space.mutate(parent.arch, self.rng)

    def _tell(self, obs: Observation) -> None:
        if obs.failed:
            return
        self.population.append(obs)
        if len(self.population) > self.population_size:
            self.population.popleft()
