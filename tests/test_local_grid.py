"""Grid search (exhaustive, shuffled, lazily indexed) and local search (White et al.'s hill climbing)."""
from __future__ import annotations

import numpy as np
import pytest
from torch import nn

from archsearch import get_space, space_from_function
from archsearch.result import Observation
from archsearch.strategies import make_strategy
from archsearch.strategies.grid import FeistelPermutation, GridExhausted

from conftest import synthetic_score


def tiny(c, shape):
    """4 x 3 x 2 = 24 architectures."""
    c.value("a", [1, 2, 3, 4])
    c.layer("b", {"x": nn.Identity, "y": nn.Identity, "z": nn.Identity})
    c.inputs("c", 2, 1)
    return nn.Identity()


@pytest.fixture(scope="module")
def small():
    return space_from_function(tiny, name="tiny")


def ask_tell(strategy, space, n, value=lambda a: 1.0):
    out = []
    for _ in range(n):
        a = strategy.ask()
        strategy.tell(Observation(a, value(a)))
        out.append(a)
    return out


# ---- grid ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 3, 7, 64, 1000, 15625])
def test_feistel_is_a_permutation(n):
    perm = FeistelPermutation(n, [11, 22, 33, 44])
    assert sorted(perm(i) for i in range(n)) == list(range(n))


def test_grid_visits_every_architecture_once_then_starts_another_pass(small):
    g = make_strategy("grid", small, seed=0)
    first = ask_tell(g, small, 24)
    assert len(set(first)) == 24 and set(first) == set(small.enumerate())
    assert first != list(small.enumerate())  # shuffled by default
    second = ask_tell(g, small, 24)
    assert set(second) == set(first) and second != first and g.passes == 2


def test_grid_natural_order_and_raise_when_exhausted(small):
    g = make_strategy("grid", small, seed=5, shuffle=False, on_exhausted="raise")
    assert ask_tell(g, small, 24) == list(small.enumerate())
    with pytest.raises(GridExhausted, match="all 24 architectures"):
        g.ask()


def test_grid_is_seeded_and_lazy_on_a_large_space():
    space = get_space("macro", layers=4)  # 2.6e9 architectures: nothing is materialised
    a = ask_tell(make_strategy("grid", space, seed=1), space, 30)
    b = ask_tell(make_strategy("grid", space, seed=1), space, 30)
    assert a == b and len(set(a)) == 30 and all(space.contains(x) for x in a)


def test_grid_refuses_a_space_too_large_in_one_line():
    space = get_space("cell")
    with pytest.raises(ValueError, match="more than max_size") as e:
        make_strategy("grid", space)
    assert "\n" not in str(e.value)


def test_grid_on_nb201_covers_the_benchmark():
    space = get_space("nb201")
    g = make_strategy("grid", space, seed=0)
    seen = {g.ask() for _ in range(space.size)}
    assert len(seen) == 15625


def test_grid_skips_non_canonical_vectors_of_a_conditional_space():
    def cond(c, shape):
        op = c.value("op", ["pool", "conv"])
        c.value("k", [1, 3, 5], active=op == "conv")
        return nn.Identity()

    space = space_from_function(cond)
    g = make_strategy("grid", space, seed=0, on_exhausted="raise")
    got = ask_tell(g, space, 4)
    assert len(set(got)) == 4 and all(space.canonical(a) == a for a in got)
    with pytest.raises(GridExhausted):
        g.ask()


# ---- local search ----------------------------------------------------------------------------------------------
def test_local_search_climbs_to_the_optimum_of_a_unimodal_objective():
    space = get_space("nb201")
    for seed in range(3):
        target = space.sample(np.random.default_rng(50 + seed))
        s = make_strategy("local", space, seed=seed)
        asked = ask_tell(s, space, 150, lambda a, t=target: synthetic_score(space, a, t))
        assert target in asked
        assert len(set(asked)) == len(asked)  # never asks twice


def test_local_search_walks_the_neighbourhood_then_restarts_at_a_local_optimum():
    space = get_space("nb201")
    s = make_strategy("local", space, seed=0, n_init=3)
    asked = ask_tell(s, space, 3 + 24 + 1, lambda a: 0.0)  # flat: every point is a local optimum
    centre = s.current
    assert s.restarts == 1 and asked[-1] == centre
    assert set(asked[3:27]) == set(space.neighbours(asked[0]))


def test_local_search_first_improvement_moves_at_once():
    space = get_space("nb201")
    target = space.sample(np.random.default_rng(7))
    s = make_strategy("local", space, seed=1, n_init=1, first_improvement=True)
    start = s.ask()
    s.tell(Observation(start, synthetic_score(space, start, target)))
    for _ in range(30):
        a = s.ask()
        v = synthetic_score(space, a, target)
        s.tell(Observation(a, v))
        if v > synthetic_score(space, start, target):
            assert s.current == a
            return
    pytest.fail("no improving neighbour found in 30 asks")


def test_local_search_in_flight_and_failures():
    space = get_space("nb201")
    s = make_strategy("local", space, seed=0, n_init=4)
    asked = [s.ask() for _ in range(8)]  # more asks than the initial design before any result
    assert len(set(asked)) == 8
    for a in reversed(asked):
        s.tell(Observation(a, None))  # all failed: nothing to climb from
    more = [s.ask() for _ in range(4)]
    assert not set(more) & set(asked)
    for a in more:
        s.tell(Observation(a, 1.0, feasible=False))  # infeasible never becomes the current architecture
    good = s.ask()
    assert s.current is None
    s.tell(Observation(good, 0.5))
    nxt = s.ask()
    assert s.current == good and nxt in space.neighbours(good)
