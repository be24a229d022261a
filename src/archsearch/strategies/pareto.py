"""NSGA-II for architectures: Deb, Pratap, Agarwal & Meyarivan, "A Fast and Elitist Multiobjective Genetic
Algorithm: NSGA-II", IEEE TEC 2002 — the algorithm behind multi-objective NAS such as NSGA-Net (Lu et al.,
GECCO 2019) and the Pareto searches of MnasNet-style hardware-aware NAS.

Steady-state and asynchronous, so that it works with parallel workers like every archsearch strategy: the
first ``population`` asks are random; after that each ask makes one child from two parents picked by binary
tournaments on (feasibility, non-domination rank, crowding distance) among the current population, by uniform
crossover of their decisions (probability ``crossover``) and one mutation. Each tell adds the result to the
pool, and the population is the best ``population`` of the pool by the same order (NSGA-II's environmental
selection). Deb's constraint handling: a feasible result beats an infeasible one; infeasible results rank
among themselves by their objectives. Single-objective observations (``values`` None) use ``(value,)``, which
makes this an elitist genetic algorithm.
"""
from __future__ import annotations

from ..hardware.objectives import crowding_distance, non_dominated_sort
from ..result import Observation
from ..space import Architecture, SearchSpace
from .base import Strategy, register_strategy


@register_strategy("nsga2")
class NSGA2(Strategy):
    """Multi-objective evolution returning a Pareto front (``front()``); options: ``population`` (default 20),
    ``crossover`` (probability of uniform crossover, 0.9), ``mutations`` (decisions mutated per child, 1)."""

    objectives = frozenset({"single", "vector"})

    def __init__(self, space: SearchSpace, seed: int = 0, population: int = 20, crossover: float = 0.9,
                 mutations: int = 1):
        super().__init__(space, seed)
        if population < 2 or not 0.0 <= crossover <= 1.0 or mutations < 0:
            raise ValueError("nsga2 needs population >= 2, 0 <= crossover <= 1 and mutations >= 0")
        self.population_size = int(population)
        self.crossover = float(crossover)
        self.mutations = int(mutations)
        self.population: list[Observation] = []
        self.n_asked = 0
        self._rank: dict[int, tuple[int, float]] = {}  # index in population -> (rank, -crowding)

    # ---- ask ------------------------------------------------------------------------------------------------------
    def _ask(self) -> Architecture:
        self.n_asked += 1
        if self.n_asked <= self.population_size or len(self.population) < 2:
            return self.space.sample(self.rng)
        a, b = self._tournament(), self._tournament()
        child = self._cross(a.arch, b.arch) if self.rng.random() < self.crossover else a.arch
        for _ in range(self.mutations):
            child = self.space.mutate(child, self.rng)
        seen = {o.arch for o in self.population} | set(self.pending)
        for _ in range(10):  # prefer an architecture not evaluated or in flight
            if child not in seen:
                break
            child = self.space.mutate(child, self.rng)
        return child

    def _tournament(self) -> Observation:
        i, j = (int(x) for x in self.rng.choice(len(self.population), size=2, replace=False))
        return self.population[min(i, j, key=lambda k: (self._rank[k], k))]

    def _cross(self, a: Architecture, b: Architecture) -> Architecture:
        """Uniform crossover: each decision from either parent (every combination is in the space)."""
        take_b = self.rng.random(len(self.space.decisions)) < 0.5
        child = {d.label: (b if t else a)[d.label] for d, t in zip(self.space.decisions, take_b)}
        return self.space.canonical(Architecture(child))

    # ---- tell -----------------------------------------------------------------------------------------------------
    def _tell(self, obs: Observation) -> None:
        if obs.failed:
            return
        pool = self.population + [obs]
        order = self._order(pool)
        keep = sorted(order, key=lambda i: order[i])[: self.population_size]
        self.population = [pool[i] for i in sorted(keep)]
        order = self._order(self.population)
        self._rank = order

    @staticmethod
    def vector(obs: Observation) -> tuple[float, ...]:
        return tuple(obs.values) if obs.values is not None else (float(obs.value),)

    def _order(self, pool: list[Observation]) -> dict[int, tuple[int, float]]:
        """index -> (rank, -crowding): feasible fronts first, then the infeasible ones' fronts."""
        out: dict[int, tuple[int, float]] = {}
        feasible = [i for i, o in enumerate(pool) if o.feasible]
        infeasible = [i for i, o in enumerate(pool) if not o.feasible]
        base = 0
        for group in (feasible, infeasible):
            pts = [self.vector(pool[i]) for i in group]
            fronts = non_dominated_sort(pts)
            for r, front in enumerate(fronts):
                crowd = crowding_distance(pts, front)
                for k in front:
                    out[group[k]] = (base + r, -crowd[k])
            base += len(fronts)
        return out

    # ---- results --------------------------------------------------------------------------------------------------
    def front(self) -> list[Observation]:
        """The non-dominated feasible observations told so far (the search's Pareto front)."""
        done = [o for o in self.history if not o.failed and o.feasible]
        if not done:
            return []
        pts = [self.vector(o) for o in done]
        return [done[i] for i in sorted(non_dominated_sort(pts)[0])]

    def best(self) -> Observation | None:
        done = [o for o in self.history if not o.failed and o.feasible]
        return max(done, key=lambda o: o.value) if done else None
