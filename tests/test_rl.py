"""The REINFORCE controller (sample/score agree, probabilities sum to one, seeded) and the ``rl`` strategy."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from archsearch import get_space, space_from_function
from archsearch.result import Observation
from archsearch.space import Architecture
from archsearch.strategies import make_strategy
from archsearch.strategies.rl import Controller

from conftest import synthetic_score


def mixed(c, shape):
    """Every decision kind: an op, a value, one input, two of four inputs, any subset of three."""
    c.layer("op", {"a": nn.Identity, "b": nn.Identity, "c": nn.Identity})
    c.value("width", [8, 16])
    c.inputs("one", 3, 1)
    c.inputs("two", 4, 2)
    c.inputs("any", 3, None)
    return nn.Identity()


@pytest.fixture(scope="module")
def mixed_space():
    return space_from_function(mixed, name="mixed")


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("name,config", [("nb201", {}), ("macro", {"layers": 4}), ("cell", {})])
def test_samples_are_valid_and_score_agrees(name, config):
    space = get_space(name, **config)
    ctrl = Controller(space, hidden=16, generator=gen())
    for _ in range(3):
        arch, logp, ent = ctrl.sample()
        assert space.contains(arch)
        assert logp.requires_grad and ent.item() > 0
        assert torch.allclose(ctrl.log_prob(arch), logp, atol=1e-5)


def test_probabilities_of_every_architecture_sum_to_one(mixed_space):
    ctrl = Controller(mixed_space, hidden=8, generator=gen(1))
    archs = [Architecture(zip(mixed_space.labels, combo))
             for combo in itertools.product(*(d.choices for d in mixed_space.decisions))]
    assert len(archs) == 3 * 2 * 3 * 6 * 8
    with torch.no_grad():
        logp, _ = ctrl.score_many(archs)
    assert abs(float(logp.exp().sum()) - 1.0) < 1e-4


def test_sampling_matches_the_probabilities():
    """Empirical frequencies follow exp(log_prob), including Plackett-Luce sets of two inputs."""
    def small(c, shape):
        c.layer("op", {"a": nn.Identity, "b": nn.Identity, "c": nn.Identity})
        c.inputs("two", 4, 2)
        return nn.Identity()

    space = space_from_function(small)
    ctrl = Controller(space, hidden=8, generator=gen(2), init_range=1.0)
    archs = list(space.enumerate())
    n = 6000
    with torch.no_grad():
        probs = ctrl.score_many(archs)[0].exp().numpy()
        drawn, _, _ = ctrl.sample_many(n)
    freq = np.array([sum(d == a for d in drawn) / n for a in archs])
    assert np.all(np.abs(freq - probs) < 4 * np.sqrt(probs * (1 - probs) / n) + 2e-3), (freq, probs)


def test_seeded_and_leaves_the_global_rng_alone(mixed_space):
    state = torch.random.get_rng_state()
    a = Controller(mixed_space, hidden=8, generator=gen(3))
    b = Controller(mixed_space, hidden=8, generator=gen(3))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert [a.sample()[0] for _ in range(5)] == [b.sample()[0] for _ in range(5)]
    assert torch.equal(torch.random.get_rng_state(), state)


def test_gradients_reach_every_kind_of_decision(mixed_space):
    ctrl = Controller(mixed_space, hidden=8, generator=gen(4))
    _, logp, ent = ctrl.sample()
    (logp + ent).backward()
    assert ctrl.attn_v.weight.grad is not None and ctrl.attn_v.weight.grad.abs().sum() > 0
    assert ctrl.heads[0].weight.grad.abs().sum() > 0


def test_controller_refuses_huge_input_sets():
    def wide(c, shape):
        c.inputs("many", 14, 12)
        return nn.Identity()

    with pytest.raises(ValueError, match="chooses 12 inputs"):
        Controller(space_from_function(wide), generator=gen())


# ---- the strategy ----------------------------------------------------------------------------------------------
def test_policy_learns_a_synthetic_objective():
    space = get_space("nb201")
    target = space.sample(np.random.default_rng(11))
    s = make_strategy("rl", space, seed=0)
    with torch.no_grad():
        before = float(s.controller.log_prob(target))
    for _ in range(60):
        a = s.ask()
        s.tell(Observation(a, synthetic_score(space, a, target)))
    with torch.no_grad():
        after = float(s.controller.log_prob(target))
    assert after > before + 2.0, (before, after)


def test_batch_updates_whatever_the_order_and_failures():
    space = get_space("nb201")
    s = make_strategy("rl", space, seed=1, batch_size=4)
    asked = [s.ask() for _ in range(4)]
    for a in reversed(asked[1:]):
        s.tell(Observation(a, 50.0 + len(s.history)))
        assert s.updates == 0
    s.tell(Observation(asked[0], None))  # the fourth result, a failure: gets the lowest reward, update runs
    assert s.updates == 1


def test_only_failures_do_not_update():
    space = get_space("nb201")
    s = make_strategy("rl", space, seed=2, batch_size=2)
    for _ in range(3):
        a, b = s.ask(), s.ask()
        s.tell(Observation(a, None))
        s.tell(Observation(b, float("nan")))
    assert s.updates == 0 and len(s.history) == 6


def test_known_results_are_not_asked_again_but_feed_the_batch():
    space = get_space("nb201")
    s = make_strategy("rl", space, seed=3, lr=0.05, batch_size=1)  # a greedy policy: it soon draws known architectures
    asked = []
    for _ in range(40):
        a = s.ask()
        asked.append(a)
        s.tell(Observation(a, 90.0 if a == asked[0] else 10.0))
    assert len(set(asked)) >= 38 and s.reused > 0
    off = make_strategy("rl", space, seed=3, lr=0.05, batch_size=1, reuse_known=False)
    again = []
    for _ in range(40):
        again.append(off.ask())
        off.tell(Observation(again[-1], 90.0 if again[-1] == asked[0] else 10.0))
    assert off.reused == 0
