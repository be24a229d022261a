"""One contract, run over every registered strategy (as Optuna tests its samplers)."""
from __future__ import annotations

import numpy as np
import pytest

from archsearch.result import Observation
from archsearch.spaces import get_space
from archsearch.strategies import STRATEGIES, make_strategy

from conftest import drive, synthetic_score

SPACES = {"nb201": {}, "macro": {"layers": 4}}


def run(strategy_name, space, target, n, seed):
    return drive(make_strategy(strategy_name, space, seed=seed), space, target, n)


@pytest.fixture(params=sorted(SPACES))
def space(request):
    return get_space(request.param, **SPACES[request.param])


@pytest.mark.parametrize("name", STRATEGIES.names())
def test_asks_valid_architectures_and_is_deterministic(name, space):
    target = space.sample(np.random.default_rng(99))
    _, a = run(name, space, target, 25, seed=3)
    _, b = run(name, space, target, 25, seed=3)
    assert all(space.contains(x) for x in a)
    assert a == b
    _, c = run(name, space, target, 25, seed=4)
    assert a != c


@pytest.mark.parametrize("name", STRATEGIES.names())
def test_several_asks_in_flight_and_tells_in_any_order(name, space):
    target = space.sample(np.random.default_rng(98))
    s = make_strategy(name, space, seed=0)
    for round_ in range(6):
        asked = [s.ask() for _ in range(4)]
        assert s.n_pending == 4
        for i, arch in enumerate(reversed(asked)):
            value = None if (round_ == 2 and i == 0) else synthetic_score(space, arch, target)  # one failure
            s.tell(Observation(arch, value))
        assert s.n_pending == 0
    assert len(s.history) == 24


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
