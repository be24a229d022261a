"""Local search (``local``): White, Nolen & Savani, "Local Search is State of the Art for Neural Architecture
Search Benchmarks" (2020; published as "Exploring the Loss Landscape in Neural Architecture Search", UAI 2021).

Hill climbing over the one-decision neighbourhood (``SearchSpace.neighbours``), as in the paper and in NASLib's
``LocalSearch``: start from the best of ``n_init`` random architectures; evaluate every neighbour of the current
architecture (in random order, skipping those already evaluated); move to the best neighbour if it beats the
current one; at a local optimum restart from a random architecture. ``first_improvement=True`` moves as soon as a
neighbour improves (the paper's "query until an improvement" variant).

Several asks in flight: asks keep drawing from the current neighbourhood; once it is all asked, the move is
decided from the results told so far (an untold current architecture counts as worst), and while nothing is
left to decide on, further asks are random architectures (useful restarts). Failed or infeasible observations
never become the current architecture; no architecture is asked twice (unless the whole space has been asked).
"""
from __future__ import annotations

import math

from ..result import Observation
from ..space import Architecture, SearchSpace
from .base import Strategy, register_strategy

__all__ = ["LocalSearch"]


@register_strategy("local")
class LocalSearch(Strategy):
    """Best-improvement hill climbing with random restarts (see the module docstring)."""

    def __init__(self, space: SearchSpace, seed: int = 0, n_init: int = 10, first_improvement: bool = False):
        super().__init__(space, seed)
        if n_init < 1:
            raise ValueError("local search needs n_init >= 1")
        self.n_init = n_init
        self.first_improvement = first_improvement
        self.values: dict[Architecture, float] = {}  # told: value, or -inf for failed / infeasible
        self.asked: set[Architecture] = set()
        self.current: Architecture | None = None
        self.queue: list[Architecture] = []  # neighbours of ``current`` still to ask, next one last
        self._neighbourhood: set[Architecture] = set()
        self.n_asked = 0
        self.restarts = 0

    # ---- ask / tell -----------------------------------------------------------------------------------------
    def _ask(self) -> Architecture:
        self.n_asked += 1
        if self.n_asked <= self.n_init:
            return self._remember(self._unasked_sample())
        if self.current is None:
            told = [a for a, v in self.values.items() if v > -math.inf]
            if not told:  # initial design still in flight (or all failed): keep sampling
                return self._remember(self._unasked_sample())
            self._move_to(max(told, key=self.values.__getitem__))
        if not self.queue:
            self._step()
        while self.queue:
            arch = self.queue.pop()
            if arch not in self.asked:
                return self._remember(arch)
        return self._remember(self._unasked_sample())  # waiting for results to decide: a random architecture

    def _tell(self, obs: Observation) -> None:
        self.asked.add(obs.arch)
        ok = not obs.failed and obs.feasible
        self.values[obs.arch] = float(obs.value) if ok else -math.inf
        if (self.first_improvement and ok and self.current is not None
                and obs.arch in self._neighbourhood and obs.value > self._value(self.current)):
            self._move_to(obs.arch)

    # ---- the walk -------------------------------------------------------------------------------------------
    def _value(self, arch: Architecture) -> float:
        return self.values.get(arch, -math.inf)

    def _move_to(self, arch: Architecture) -> None:
        self.current = arch
        nbrs = self.space.neighbours(arch)
        self._neighbourhood = set(nbrs)
        order = self.rng.permutation(len(nbrs))
        self.queue = [nbrs[int(i)] for i in order if nbrs[int(i)] not in self.asked]

    def _step(self) -> None:
        """The neighbourhood is all asked: move to its best told member if it improves, else restart, unless
        results are still out (then do nothing; the caller asks a random architecture meanwhile)."""
        told = [a for a in self._neighbourhood if a in self.values]
        best = max(told, key=self.values.__getitem__, default=None)
        if best is not None and self.values[best] > self._value(self.current):
            self._move_to(best)
            return
        if any(a in self.pending for a in self._neighbourhood) or self.current in self.pending:
            return
        self.restarts += 1
        self._move_to(self._unasked_sample())
        self.queue.append(self.current)  # the restart point itself is asked next

    def _remember(self, arch: Architecture) -> Architecture:
        self.asked.add(arch)
        return arch

    def _unasked_sample(self) -> Architecture:
        return self.sample_unasked(self.asked)
