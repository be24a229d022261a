"""Bayesian optimisation: encodings, expected improvement, the GP surrogate, trust region and pending asks."""
from __future__ import annotations

import numpy as np
import pytest
from torch import nn

from archsearch import get_space, space_from_function
from archsearch.result import Observation
from archsearch.strategies import make_strategy
from archsearch.strategies.bayesopt import GPSurrogate, copula, expected_improvement
from archsearch.strategies.encodings import Encoder, nb201_path_encoding

from conftest import synthetic_score


@pytest.fixture(scope="module")
def nb201():
    return get_space("nb201")


def tiny(c, shape):
    c.value("a", [1, 2, 3, 4])
    c.layer("b", {"x": nn.Identity, "y": nn.Identity, "z": nn.Identity})
    c.inputs("c", 2, 1)
    return nn.Identity()


# ---- encodings -------------------------------------------------------------------------------------------------
def test_nb201_path_encoding(nb201):
    enc = Encoder(nb201)
    assert enc.name == "one-hot+nb201" and enc.width == 30 + 84
    dead = nb201.parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    assert nb201_path_encoding(nb201, dead).sum() == 0
    skip = nb201.parse("|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    assert nb201_path_encoding(nb201, skip).sum() == 1  # one path of length one
    full = nb201.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|"
                       "nor_conv_3x3~2|")
    assert nb201_path_encoding(nb201, full).sum() == 3  # the two length-2 paths share one bit
    assert Encoder(nb201, mode="one-hot").width == 30 and Encoder(nb201, mode="extra").width == 84


def test_one_hot_fallback_for_other_spaces_and_impostors():
    assert Encoder(space_from_function(tiny)).name == "one-hot"
    impostor = space_from_function(tiny, name="nb201")  # same name, other decisions: no path encoding
    enc = Encoder(impostor)
    assert enc.name == "one-hot" and enc.width == impostor.encoding_width
    with pytest.raises(ValueError, match="encoding mode"):
        Encoder(impostor, mode="paths")


# ---- acquisition and surrogate ---------------------------------------------------------------------------------
def test_expected_improvement():
    ei = expected_improvement(np.array([0.0, 1.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0, 0.0]), best=1.0)
    assert ei[1] > ei[0] > 0 and ei[2] == pytest.approx(0.0) and ei[3] == pytest.approx(1.0)
    assert np.all(np.diff(copula(np.array([10.0, 80.0, 85.0, 84.0]))[[0, 1, 3, 2]]) > 0)


def test_pending_points_lower_the_acquisition_there(nb201):
    rng = np.random.default_rng(0)
    target = nb201.sample(rng)
    archs = [nb201.sample(rng) for _ in range(20)]
    gp = GPSurrogate(Encoder(nb201))
    gp.update(archs, np.array([synthetic_score(nb201, a, target) for a in archs]))
    cands = nb201.neighbours(archs[0])[:5]
    free = gp.ei(cands)
    busy = gp.ei(cands, pending=[cands[int(np.argmax(free))]])
    assert busy[int(np.argmax(free))] < 0.5 * free.max()
    liar = GPSurrogate(Encoder(nb201), pending="liar")
    liar.update(archs, gp.y)
    assert liar.ei(cands, pending=cands[:1])[0] < liar.ei(cands)[0] + 1e-12


# ---- the strategy ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("trust_region", [True, False])
def test_finds_the_optimum_of_a_synthetic_objective_without_repeats(nb201, trust_region):
    target = nb201.sample(np.random.default_rng(21))
    s = make_strategy("bo", nb201, seed=0, trust_region=trust_region)
    asked = []
    for _ in range(70):
        asked.append(s.ask())
        s.tell(Observation(asked[-1], synthetic_score(nb201, asked[-1], target)))
    assert target in asked and len(set(asked)) == len(asked)


def test_trust_region_walks_neighbourhoods_and_restarts(nb201):
    s = make_strategy("bo", nb201, seed=1, n_init=3, equivalents=False)  # every neighbour, equivalent or not
    asked = []
    for _ in range(3 + 24 + 1):
        asked.append(s.ask())
        s.tell(Observation(asked[-1], 1.0 if len(asked) <= 3 else 0.0))  # nothing beats the initial design
    assert set(asked[3:27]) == set(nb201.neighbours(asked[0]))  # the region around the best (the first of ties)
    assert s.restarts == 1 and asked[-1] == s.centre


def test_region_stop_restarts_once_the_gp_rules_out_the_rest_of_the_region(nb201):
    asked = {}
    for tau in (0.0, 0.05):
        s = make_strategy("bo", nb201, seed=1, n_init=3, region_stop=tau)
        asked[tau] = []
        while s.restarts == 0 and len(asked[tau]) < 40:
            asked[tau].append(s.ask())
            s.tell(Observation(asked[tau][-1], 1.0 if len(asked[tau]) == 1 else 0.0))  # the first is the peak
        assert s.restarts == 1 and asked[tau][-1] == s.centre
    assert len(asked[0.0]) == 3 + 24 + 1  # off: every neighbour of the centre first
    assert len(asked[0.05]) < len(asked[0.0])  # on: sure nothing left improves after a few flat neighbours
    assert asked[0.05][:3] == asked[0.0][:3]


def test_local_model_fits_only_observations_near_the_centre(nb201):
    rng = np.random.default_rng(5)
    centre = nb201.sample(rng)
    hamming = lambda a: sum(a[k] != centre[k] for k in nb201.labels)  # noqa: E731
    pool = {b for n in nb201.neighbours(centre) for b in nb201.neighbours(n)} | {nb201.sample(rng) for _ in range(50)}
    by_d = {d: sorted((a for a in pool if hamming(a) == d), key=str)[:3] for d in (1, 2)}
    far = sorted((a for a in pool if hamming(a) >= 3), key=str)[:4]
    archs = [centre, *by_d[1], *by_d[2], *far]
    s = make_strategy("bo", nb201, seed=0, local_model=2)
    for i, a in enumerate(archs):
        s.tell(Observation(a, float(i % 5)))
    s.centre = centre
    assert list(s.distances(archs)) == [hamming(a) for a in archs]
    local, close = s.local_surrogate([by_d[1][0], far[0]])
    assert set(local.archs) == {centre, *by_d[1], *by_d[2]} and close == [by_d[1][0]]
    assert local.kernel == s.model.fit().kernel_  # the global GP's hyperparameters, not refitted
    assert np.allclose(local.y, [s.model.y[s.model.archs.index(a)] for a in local.archs])
    s.local_model = 1  # 4 observations within one edit: fewer than LOCAL_MIN, the global GP answers
    assert s.local_surrogate([far[0]]) == (s.model, [far[0]])


def test_local_model_zero_is_the_default_and_two_still_climbs(nb201):
    target = nb201.sample(np.random.default_rng(21))
    runs = {}
    for opts in ({}, {"local_model": 0}, {"local_model": 2}):
        s = make_strategy("bo", nb201, seed=0, n_init=5, **opts)
        runs[str(opts)] = asked = [s.ask() for _ in range(3)]  # asks in flight: kriging believer in the region
        for a in asked:
            s.tell(Observation(a, synthetic_score(nb201, a, target)))
        for _ in range(67):
            asked.append(s.ask())
            s.tell(Observation(asked[-1], synthetic_score(nb201, asked[-1], target)))
        assert len(set(asked)) == len(asked)
    assert runs["{}"] == runs["{'local_model': 0}"]
    assert target in runs["{'local_model': 2}"] and runs["{'local_model': 2}"] != runs["{}"]


@pytest.mark.parametrize("name", ["bo", "bo-ehvi", "local-pareto"])
def test_architectures_equivalent_to_asked_ones_are_not_asked(nb201, name):
    """nb201 cells that differ only on edges into nodes the output never reads compute the same function."""
    s = make_strategy(name, nb201, seed=2, equivalents=True)
    asked = []
    for i in range(40):
        asked.append(s.ask())
        s.tell(Observation(asked[-1], float(i % 7), values=(float(i % 7), float(i % 5))))
    keys = [nb201.equivalent(a) for a in asked]
    assert len(set(keys)) == len(keys)
    plain = make_strategy(name, nb201, seed=2, equivalents=False)
    assert plain.ask() == asked[0]  # the option changes nothing else


def test_failures_are_left_out_and_never_asked_again(nb201):
    s = make_strategy("bo", nb201, seed=2, n_init=4)
    seen = set()
    for i in range(30):
        a = s.ask()
        assert a not in seen
        seen.add(a)
        s.tell(Observation(a, None if i % 3 == 0 else float(i)))
    assert len(s.ok) == 20


def test_several_asks_in_flight_are_distinct(nb201):
    target = nb201.sample(np.random.default_rng(3))
    for mode in ("believer", "liar"):
        s = make_strategy("bo", nb201, seed=3, n_init=5, pending=mode)
        first = [s.ask() for _ in range(5)]
        for a in first:
            s.tell(Observation(a, synthetic_score(nb201, a, target)))
        batch = [s.ask() for _ in range(6)]  # the region, then global candidates while results are out
        assert len(set(batch) | set(first)) == 11
        for a in reversed(batch):
            s.tell(Observation(a, synthetic_score(nb201, a, target)))
        assert s.n_pending == 0


def test_exhausts_a_tiny_space_without_crashing():
    space = space_from_function(tiny)
    s = make_strategy("bo", space, seed=4, n_init=3)
    asked = []
    for i in range(30):
        asked.append(s.ask())
        s.tell(Observation(asked[-1], float(i % 7)))
    assert len(set(asked[:24])) == 24 and all(space.contains(a) for a in asked)


def test_after_a_restart_the_region_is_scored_by_the_climbs_own_data(nb201):
    """region_data='climb' (the default): after a restart the region's GP holds only the new climb's
    observations; the first climb and region_data='all' use every observation."""
    target, decoy = (nb201.sample(np.random.default_rng(i)) for i in (21, 22))
    asked = {}
    for data in ("climb", "all"):
        s = make_strategy("bo", nb201, seed=1, n_init=3, region_data=data)
        asked[data] = []
        while s.restarts == 0:  # the first climb learns a landscape peaked elsewhere
            asked[data].append(s.ask())
            s.tell(Observation(asked[data][-1], synthetic_score(nb201, asked[data][-1], decoy)))
        assert (s.climb is not None) == (data == "climb")
        for _ in range(6):
            asked[data].append(s.ask())
            s.tell(Observation(asked[data][-1], synthetic_score(nb201, asked[data][-1], target)))
        if data == "climb":
            fits = []
            s.model.subset = lambda keep, sub=s.model.subset: fits.append(keep) or sub(keep)
            s.ask()
            assert {s.model.archs[i] for i in fits[0]} == s.climb & set(s.ok) and len(fits[0]) <= 7
    first = len(asked["all"]) - 6
    assert asked["climb"][:first] == asked["all"][:first]  # the same first climb and restart
    assert asked["climb"] != asked["all"]  # then the scoring differs


def test_bad_options():
    space = get_space("nb201")
    with pytest.raises(ValueError, match="pending"):
        make_strategy("bo", space, pending="optimist")
    with pytest.raises(ValueError, match="y_transform"):
        make_strategy("bo", space, y_transform="log")
    with pytest.raises(ValueError, match="region_stop"):
        make_strategy("bo", space, region_stop=1.5)
    with pytest.raises(ValueError, match="local_model"):
        make_strategy("bo", space, local_model=-1)
    with pytest.raises(ValueError, match="local_model"):
        make_strategy("bo-constrained", space, local_model=2)
    with pytest.raises(ValueError, match="region_data"):
        make_strategy("bo", space, region_data="some")
    with pytest.raises(ValueError, match="region_data"):
        make_strategy("bo-constrained", space, region_data="climb")
