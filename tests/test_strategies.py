"""Strategy checks beyond the contract (test_contracts.py runs that over every registered strategy)."""
from __future__ import annotations

import numpy as np
import pytest

from archsearch.spaces import get_space
from archsearch.strategies import make_strategy

from conftest import drive


def run(strategy_name, space, target, n, seed):
    return drive(make_strategy(strategy_name, space, seed=seed), space, target, n)


def test_evolution_beats_random_on_a_synthetic_objective():
    space = get_space("macro", layers=4)
    ev, rs = [], []
    for seed in range(8):
        target = space.sample(np.random.default_rng(1000 + seed))
        ev.append(run("evolution", space, target, 150, seed)[0])
        rs.append(run("random", space, target, 150, seed)[0])
    assert np.mean(ev) > np.mean(rs) + 5.0, (np.mean(ev), np.mean(rs))


def test_unknown_strategy_and_bad_options():
    space = get_space("nb201")
    with pytest.raises(KeyError, match="unknown strategy"):
        make_strategy("nope", space)
    with pytest.raises(TypeError, match="no option"):
        make_strategy("random", space, bogus=1)
