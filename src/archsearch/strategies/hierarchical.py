"""Hierarchical evolution (``hierarchical-evolution``): Liu, Simonyan, Vinyals, Fernando & Kavukcuoglu,
"Hierarchical Representations for Efficient Architecture Search", ICLR 2018 (sections 2-3).

* Genotype (the hierarchical representation): every motif of every level, used or not. The strategy keeps each
  asked architecture's full genotype; what it asks (and the study stores) is the canonical architecture, in which
  the motifs and edges that do not reach the network are reset. Without this a level-3 mutation that switches an
  edge to a motif no edge used before would bring in an empty motif (the zero map) instead of that motif's own
  structure.
* Mutation: pick a non-primitive level l >= 2, a motif of that level, a successor node j of that
  motif, a predecessor i < j, and replace the motif of level l-1 on edge i -> j by another one (``none``, no
  edge, included). Here the motif and the edge are picked among those that matter (a motif no level-3 edge uses,
  an edge leaving an unreachable node would give a neutral mutation: the same network again).
* Initialisation: the trivial genotype (every motif a chain of identity mappings) diversified
  by ``init_mutations`` random mutations over all motifs and edges (the paper uses 1000).
* Search and implementation: asynchronous tournament selection: each ask draws ``tournament`` (5%) of the
  evaluated population at random (at least ``min_tournament``), mutates the best of them, and the child joins the
  population when told; asks still pending are not in the population (the paper's controller selects from the
  table of evaluated genotypes while the queue waits). The population is never pruned. The paper's tournaments
  never held fewer than 10 (5% of at least 200 genotypes); with the tens of genotypes of a CPU budget 5% would be
  a single random pick, so a tournament holds at least ``min_tournament`` (5).
* Each network is evaluated once: a child whose canonical architecture was asked before is mutated again (up to
  ``retries`` times), then replaced by fresh initial genotypes (``retries`` more tries).

The hierarchy comes from :func:`archsearch.spaces.hierarchical.motif_groups`. On a space without one (nb201,
macro, a user's space) every decision counts as an edge of one motif: mutation changes one active decision
(``space.mutate``) and the initial genotypes are random samples.
"""
from __future__ import annotations

import math
from typing import Callable

from ..result import Observation
from ..space import Architecture, SearchSpace
from ..spaces.hierarchical import motif_groups
from .base import Strategy, register_strategy

__all__ = ["HierarchicalEvolution", "trivial_genotype"]

Groups = dict[int, dict[str, list[str]]]
EdgeTree = dict[int, dict[str, dict[int, list[str]]]]


def _edge(label: str) -> tuple[int, int]:
    """``m2:3<-1`` -> (3, 1): successor and predecessor node of the edge."""
    j, i = label.partition(":")[2].split("<-")
    return int(j), int(i)


def trivial_genotype(space: SearchSpace, groups: Groups) -> Architecture:
    """Every motif a chain: edge j-1 -> j carries an identity (level 2) or the first motif (level 3); no other
    edge. The full genotype: unused motifs are identity chains too (not reset as in the canonical form)."""
    choices = {}
    for level in groups.values():
        for labels in level.values():
            for label in labels:
                j, i = _edge(label)
                opts = space.decision(label).options
                chain = "identity" if "identity" in opts else next(o for o in opts if o != "none")
                choices[label] = chain if j == i + 1 else ("none" if "none" in opts else opts[0])
    return space.validate(choices)


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
        self.edges = _edge_tree(self.groups, lambda lbl: space.decision(lbl).size > 1) if self.groups else {}
        self.population: list[Observation] = []
        self.asked: set[Architecture] = set()
        self.genotypes: dict[Architecture, Architecture] = {}  # canonical architecture asked -> its full genotype
        self.n_asked = 0

    # ---- ask / tell -----------------------------------------------------------------------------------------
    def _ask(self) -> Architecture:
        self.n_asked += 1
        if self.n_asked <= self.n_init or not self.population:
            make = self._initial
        else:
            parent = self._select()
            genotype = self.genotypes.get(parent.arch, parent.arch)
            make = lambda: self._mutate_genotype(genotype)  # noqa: E731
        genotype = make()
        arch = self.space.canonical(genotype)
        for again in [make] * self.retries + [self._initial] * self.retries:  # then the space seems exhausted
            if arch not in self.asked:
                break
            genotype = again()
            arch = self.space.canonical(genotype)
        self.asked.add(arch)
        self.genotypes.setdefault(arch, genotype)
        return arch

    def _tell(self, obs: Observation) -> None:
        self.asked.add(obs.arch)
        if not obs.failed and obs.feasible:
            self.population.append(obs)

    # ---- the operators --------------------------------------------------------------------------------------
    def _initial(self) -> Architecture:
        """A full genotype: the trivial one after ``init_mutations`` mutations (a random sample off-hierarchy)."""
        if self.trivial is None:
            return self.space.sample(self.rng)
        choices = dict(self.trivial)
        for _ in range(self.init_mutations):  # the paper's mutations, neutral ones included (cheap: no replay)
            label = self._pick_edge(self.edges)
            choices[label] = self.space.decision(label).mutate(choices[label], self.rng)
        return self.space.validate(choices)

    def _select(self) -> Observation:
        n = len(self.population)
        k = min(n, max(self.min_tournament, math.ceil(self.tournament * n)))
        idx = self.rng.choice(n, size=k, replace=False)
        return max((self.population[int(i)] for i in idx), key=lambda o: o.value)

    def mutate(self, arch: Architecture) -> Architecture:
        """Level, then motif, then edge (each among those that matter), then a different op on the edge;
        returns the canonical child."""
        return self.space.canonical(self._mutate_genotype(arch))

    def _mutate_genotype(self, genotype: Architecture) -> Architecture:
        """One mutation of a full genotype that changes the network (the paper's, neutral ones left out)."""
        if self.groups is None:
            return self.space.mutate(genotype, self.rng)
        active = self.space.active(genotype)
        label = self._pick_edge(_edge_tree(self.groups, lambda lbl: lbl in active
                                           and self.space.decision(lbl).size > 1))
        if label is None:
            return genotype
        return genotype.with_choice(label, self.space.decision(label).mutate(genotype[label], self.rng))

    def _pick_edge(self, tree: EdgeTree) -> str | None:
        """Level, motif, successor node j, predecessor i < j: each uniform, as in the paper's mutation."""
        if not tree:
            return None
        motifs = tree[sorted(tree)[int(self.rng.integers(len(tree)))]]
        successors = list(motifs.values())[int(self.rng.integers(len(motifs)))]
        into_j = list(successors.values())[int(self.rng.integers(len(successors)))]
        return into_j[int(self.rng.integers(len(into_j)))]


def _edge_tree(groups: Groups, keep: Callable[[str], bool]) -> EdgeTree:
    """``{level: {motif: {successor node: [labels of its in-edges]}}}`` over the labels ``keep`` accepts."""
    tree: EdgeTree = {}
    for level, motifs in groups.items():
        for motif, labels in motifs.items():
            for label in labels:
                if keep(label):
                    tree.setdefault(level, {}).setdefault(motif, {}).setdefault(_edge(label)[0], []).append(label)
    return tree
