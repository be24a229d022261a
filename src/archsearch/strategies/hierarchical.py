"""Hierarchical evolution (``hierarchical-evolution``): Liu, Simonyan, Vinyals, Fernando & Kavukcuoglu,
"Hierarchical Representations for Efficient Architecture Search", ICLR 2018, sections 3.2-3.3.

* Mutation (section 3.2): pick a non-primitive level l >= 2, a motif of that level, an edge of that motif, and
  replace the motif of level l-1 on that edge by another one (``none``, no edge, included). Here the motif and
  the edge are picked among those that matter (a motif no level-3 edge uses, an edge leaving an unreachable node
  would give a neutral mutation: the same network again).
* Initial population (section 3.3): the trivial genotype (every motif a chain of identity mappings) diversified
  by ``init_mutations`` random mutations (the paper uses 1000).
* Search (section 3.3): tournament selection, asynchronous: each ask draws ``tournament`` (5%) of the population
  at random (at least ``min_tournament``), mutates the best of them, and the child joins the population when
  told. The population is never pruned. The paper's tournaments never held fewer than 10 (5% of at least 200
  genotypes); with the tens of genotypes of a CPU budget 5% would be a single random pick, so a tournament holds
  at least ``min_tournament`` (5).

The hierarchy comes from :func:`archsearch.spaces.hierarchical.motif_groups`. On a space without one (nb201,
macro, a user's space) every decision counts as an edge of one motif: mutation changes one active decision
(``space.mutate``) and the trivial genotype is a random sample. A child equal to an architecture already asked is
mutated again (up to ``retries`` times), so budgets are not spent on re-measuring.
"""
from __future__ import annotations

import math

from ..result import Observation
from ..space import Architecture, SearchSpace
from ..spaces.hierarchical import motif_groups
from .base import Strategy, register_strategy

__all__ = ["HierarchicalEvolution", "trivial_genotype"]


def trivial_genotype(space: SearchSpace, groups: dict[int, dict[str, list[str]]]) -> Architecture:
    """Every motif a chain: edge j-1 -> j carries an identity (level 2) or the first motif (level 3); no other
    edge."""
    choices = {}
    for level in groups.values():
        for labels in level.values():
            for label in labels:
                j, i = (int(x) for x in label.partition(":")[2].split("<-"))
                opts = space.decision(label).options
                chain = "identity" if "identity" in opts else next(o for o in opts if o != "none")
                choices[label] = chain if j == i + 1 else ("none" if "none" in opts else opts[0])
    return space.canonical(space.validate(choices))


@register_strategy("hierarchical-evolution")
class HierarchicalEvolution(Strategy):
    """Tournament selection with hierarchical mutations, asynchronous, population never pruned (see the module
    docstring). Options: ``n_init`` (initial population), ``init_mutations``, ``tournament`` (fraction of the
    population), ``min_tournament``, ``retries``."""

    def __init__(self, space: SearchSpace, seed: int = 0, n_init: int = 20, init_mutations: int = 1000,
                 tournament: float = 0.05, min_tournament: int = 5, retries: int = 20):
        super().__init__(space, seed)
        if n_init < 1 or init_mutations < 0 or not 0 < tournament <= 1 or min_tournament < 1 or retries < 0:
            raise ValueError("hierarchical-evolution needs n_init >= 1, init_mutations >= 0, 0 < tournament <= 1, "
                             "min_tournament >= 1 and retries >= 0")
        self.n_init, self.init_mutations = n_init, init_mutations
        self.tournament, self.min_tournament, self.retries = tournament, min_tournament, retries
        self.groups = motif_groups(space)
        self.trivial = trivial_genotype(space, self.groups) if self.groups else None
        self.population: list[Observation] = []
        self.asked: set[Architecture] = set()
        self.n_asked = 0

    # ---- ask / tell -----------------------------------------------------------------------------------------
    def _ask(self) -> Architecture:
        self.n_asked += 1
        if self.n_asked <= self.n_init or not self.population:
            make = self._initial
        else:
            parent = self._select()
            make = lambda: self.mutate(parent.arch)  # noqa: E731
        arch = make()
        for _ in range(self.retries):
            if arch not in self.asked:
                break
            arch = make()
        self.asked.add(arch)
        return arch

    def _tell(self, obs: Observation) -> None:
        self.asked.add(obs.arch)
        if not obs.failed and obs.feasible:
            self.population.append(obs)

    # ---- the operators --------------------------------------------------------------------------------------
    def _initial(self) -> Architecture:
        if self.trivial is None:
            return self.space.sample(self.rng)
        arch = self.trivial
        for _ in range(self.init_mutations):  # the paper's mutations, neutral ones included (cheap: no replay)
            arch = self._mutate_edge(arch, {lvl: dict(m) for lvl, m in self.groups.items()})
        return self.space.canonical(arch)

    def _select(self) -> Observation:
        n = len(self.population)
        k = min(n, max(self.min_tournament, math.ceil(self.tournament * n)))
        idx = self.rng.choice(n, size=k, replace=False)
        return max((self.population[int(i)] for i in idx), key=lambda o: o.value)

    def mutate(self, arch: Architecture) -> Architecture:
        """Level, then motif, then edge (each among those that matter), then a different op on the edge."""
        if self.groups is None:
            return self.space.mutate(arch, self.rng)
        active = self.space.active(arch)
        levels = {lvl: {m: [lbl for lbl in labels if lbl in active and self.space.decision(lbl).size > 1]
                        for m, labels in motifs.items()} for lvl, motifs in self.groups.items()}
        return self.space.canonical(self._mutate_edge(arch, levels))

    def _mutate_edge(self, arch: Architecture, levels: dict[int, dict[str, list[str]]]) -> Architecture:
        levels = {lvl: {m: e for m, e in motifs.items() if e} for lvl, motifs in levels.items()}
        levels = {lvl: motifs for lvl, motifs in levels.items() if motifs}
        if not levels:
            return arch
        level = sorted(levels)[int(self.rng.integers(len(levels)))]
        motifs = levels[level]
        motif = sorted(motifs)[int(self.rng.integers(len(motifs)))]
        edges = motifs[motif]
        label = edges[int(self.rng.integers(len(edges)))]
        d = self.space.decision(label)
        return arch.with_choice(label, d.mutate(arch[label], self.rng))
