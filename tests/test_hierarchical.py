"""The hierarchical space (Liu et al., ICLR 2018) and hierarchical evolution."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import archsearch
from archsearch.result import Observation
from archsearch.space import Architecture, InputShape
from archsearch.spaces import get_space
from archsearch.spaces.hierarchical import PRIMITIVES, motif_groups, motif_label, top_label
from archsearch.strategies import make_strategy
from archsearch.strategies.hierarchical import HierarchicalEvolution, trivial_genotype

from conftest import synthetic_score

DIGITS = InputShape(1, 8, 8, 10)
SMALL = {"channels": 4, "cells": 2, "motifs": 3, "motif_nodes": 3, "cell_nodes": 3}


def test_decisions_follow_the_paper():
    space = get_space("hierarchical")
    assert set(PRIMITIVES) == {"none", "conv_1x1", "dw_conv_3x3", "sep_conv_3x3", "max_pool_3x3",
                               "avg_pool_3x3", "identity"}
    groups = motif_groups(space)
    assert sorted(groups) == [2, 3]
    assert len(groups[2]) == 6 and all(len(e) == 6 for e in groups[2].values())  # M2 = 6 motifs of 4 nodes
    assert len(groups[3]["top"]) == 10  # one level-3 motif of 5 nodes
    assert space.decision(top_label(4, 0)).options == tuple(f"motif{k}" for k in range(6)) + ("none",)
    assert space.decision(motif_label(5, 3, 2)).options == PRIMITIVES
    assert motif_groups(get_space("nb201")) is None


@pytest.mark.parametrize("merge", ["concat", "sum"])
def test_sample_build_forward_and_json(merge):
    space = get_space("hierarchical", merge=merge, channels=8, cells=2)
    rng = np.random.default_rng(0)
    for _ in range(3):
        arch = space.sample(rng)
        assert Architecture.from_json(arch.to_json()) == arch
        net = space.build(arch, DIGITS)
        assert net(torch.randn(2, 1, 8, 8)).shape == (2, 10)
        assert space.format(arch).startswith("top:")


def test_unused_motifs_are_inactive_and_canonicalised():
    space = get_space("hierarchical", **SMALL)
    choices = {lbl: "identity" for lbl in space.labels if lbl.startswith("m")}
    choices.update({top_label(1, 0): "motif0", top_label(2, 0): "none", top_label(2, 1): "motif0"})
    arch = space.validate(choices)
    active = space.active(arch)
    assert motif_label(0, 1, 0) in active and motif_label(1, 1, 0) not in active
    other = arch.with_choice(motif_label(1, 1, 0), "sep_conv_3x3")
    assert space.canonical(other) == space.canonical(arch)  # motif1 is not used: the same network
    used = arch.with_choice(motif_label(0, 1, 0), "sep_conv_3x3")
    assert space.canonical(used) != space.canonical(arch)


def test_a_cell_without_a_path_is_the_zero_map():
    space = get_space("hierarchical", **SMALL)
    choices = {lbl: "none" for lbl in space.labels}
    net = space.build(space.canonical(space.validate(choices)), DIGITS).eval()
    x = torch.randn(3, 1, 8, 8)
    body = net.body(net.stem(x))
    assert torch.count_nonzero(body) == 0 and net(x).shape == (3, 10)


def test_motifs_are_shared_decisions_with_separate_weights():
    space = get_space("hierarchical", **SMALL)
    choices = {lbl: "conv_1x1" for lbl in space.labels if lbl.startswith("m")}
    choices.update({lbl: "motif1" for lbl in space.labels if lbl.startswith("top")})
    net = space.build(space.validate(choices), DIGITS)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (1, 1)
             and m.in_channels == m.out_channels == 4]
    # cell 1 (4 channels): 3 level-3 edges x motif1's 3 edges, each its own conv
    assert len(convs) == 9 and len({id(c.weight) for c in convs}) == 9


def test_bad_config_is_a_clear_error():
    with pytest.raises(ValueError, match="merge"):
        get_space("hierarchical", merge="max")
    with pytest.raises(ValueError, match="motif_nodes"):
        get_space("hierarchical", motif_nodes=1)


def test_trivial_genotype_is_identity_chains():
    space = get_space("hierarchical", **SMALL)
    t = trivial_genotype(space, motif_groups(space))
    assert t[top_label(1, 0)] == "motif0" and t[top_label(2, 1)] == "motif0" and t[top_label(2, 0)] == "none"
    assert t[motif_label(0, 1, 0)] == "identity" and t[motif_label(0, 2, 0)] == "none"


def test_mutation_changes_one_edge_of_one_used_motif():
    space = get_space("hierarchical")
    s = HierarchicalEvolution(space, seed=0)
    rng = np.random.default_rng(1)
    for _ in range(12):
        parent = space.sample(rng)
        child = s.mutate(parent)
        assert space.contains(child) and child != parent
        both = space.active(parent) & space.active(child)  # a motif or node cut off is canonicalised too
        changed = [lbl for lbl in space.labels if child[lbl] != parent[lbl] and lbl in both]
        assert len(changed) == 1


def test_falls_back_to_one_decision_mutations_on_other_spaces():
    space = get_space("nb201")
    s = make_strategy("hierarchical-evolution", space, seed=0)
    assert s.groups is None
    a = space.sample(np.random.default_rng(0))
    b = s.mutate(a)
    assert sum(a[k] != b[k] for k in space.labels) == 1


def test_population_is_never_pruned_and_tournaments_grow():
    space = get_space("nb201")
    s = HierarchicalEvolution(space, seed=0, n_init=5, tournament=0.2)
    for t in range(60):
        arch = s.ask()
        s.tell(Observation(arch, float(t % 7), trial=t))
    assert len(s.population) == 60


def test_beats_random_search_on_a_synthetic_objective():
    space = get_space("hierarchical", **SMALL)
    he, rs = [], []
    for seed in range(6):
        target = space.sample(np.random.default_rng(500 + seed))
        for name, out in (("hierarchical-evolution", he), ("random", rs)):
            s = make_strategy(name, space, seed=seed)
            best = 0.0
            for t in range(100):
                arch = s.ask()
                v = synthetic_score(space, arch, target)
                s.tell(Observation(arch, v, trial=t))
                best = max(best, v)
            out.append(best)
    assert np.mean(he) > np.mean(rs) + 3.0, (np.mean(he), np.mean(rs))


def test_a_tiny_search_on_digits(tmp_path):
    run = archsearch.search("hierarchical", "hierarchical-evolution", trials=3, epochs=1, seed=0,
                            out=tmp_path / "run", space_config=SMALL, strategy_options={"n_init": 2})
    assert len(run.trials) == 3 and run.best is not None
    assert run.model()(torch.randn(2, 1, 8, 8)).shape == (2, 10)
