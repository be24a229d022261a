"""The contract every registered space and every registered strategy keeps, parametrized over the registries (as
Optuna tests its samplers and timm its models): a space or strategy is covered the moment it is registered.

What is specific to one space or strategy stays in its own test file (test_cell_space.py, test_mbconv.py, ...).
A space with no entry in ``VARIANTS`` is tested with its default configuration.
"""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from archsearch.evaluators import EVALUATORS
from archsearch.result import Observation
from archsearch.space import Architecture, ArchitectureError, InputShape, space_from_function
from archsearch.spaces import SPACES, get_space
from archsearch.spaces.rnn import TEXT_SPACES
from archsearch.storage import RunStore
from archsearch.strategies import STRATEGIES, make_strategy
from archsearch.study import Budget, Study

from conftest import drive, synthetic_score, user_space

# ---- spaces ------------------------------------------------------------------------------------------------------
MBCONV_TINY = dict(widths=[[8], [8, 16], [16, 24]], depths=[[1], [1, 2], [1, 2]], strides=[1, 2, 2], kernels=[3, 5],
                   expand_ratios=[1, 3], stem_channels=8, head_channels=32, feature_channels=32, stem_stride=1,
                   dropout=0.0)
HIERARCHICAL_SMALL = {"channels": 4, "cells": 2, "motifs": 3, "motif_nodes": 3, "cell_nodes": 3}
RNN_SMALL = {"emb": 8, "hidden": 8, "nodes": 4}
VARIANTS: dict[str, list[dict]] = {  # small configurations (CPU-cheap), and the variants that change the decisions
    "nb201": [{"channels": 4, "cells_per_stage": 1}],
    "macro": [{"layers": 4}],
    "cell": [{"channels": 4, "layers": 3}, {"channels": 4, "layers": 3, "concat": "loose"}],
    "hierarchical": [HIERARCHICAL_SMALL, {**HIERARCHICAL_SMALL, "merge": "sum"}],
    "mbconv": [MBCONV_TINY, {**MBCONV_TINY, "block_choice": "op"}],
    "superkernel": [{"layers": 3, "channels": 4, "max_kernel": 3}],
    "rnn": [RNN_SMALL],
    "enas-rnn": [RNN_SMALL],
}
IMAGE_SHAPES = [InputShape(1, 8, 8, 10), InputShape(3, 16, 16, 4)]
TEXT_SHAPE = InputShape(1, 1, 8, 34)  # token windows of 8 over a 34-word vocabulary


def _space_cases() -> list:
    cases = [pytest.param(("user", None), id="user")]
    for name in SPACES.names():
        for i, config in enumerate(VARIANTS.get(name, [{}])):
            cases.append(pytest.param((name, config), id=name if i == 0 else f"{name}-{i}"))
    return cases


@pytest.fixture(params=_space_cases())
def space(request):
    name, config = request.param
    if name == "user":
        return space_from_function(user_space, "user")
    return get_space(name, **config)


def forward_cases(space) -> list[tuple[InputShape, torch.Tensor, tuple]]:
    """(input shape, a tiny input batch, the output shape the model must give) for the kind of data the space takes."""
    if space.name in TEXT_SPACES:
        s = TEXT_SHAPE
        return [(s, torch.randint(0, s.num_classes, (2, s.width)), (2, s.num_classes, s.width))]
    return [(s, torch.randn(2, *s.size), (2, s.num_classes)) for s in IMAGE_SHAPES]


def test_sampled_architectures_build_a_model_that_runs_forward(space):
    rng = np.random.default_rng(0)
    for _ in range(3):
        arch = space.sample(rng)
        assert space.contains(arch)
        for shape, x, out_shape in forward_cases(space):
            with torch.no_grad():
                out = space.build(arch, shape).eval()(x)
            assert out.shape == out_shape and torch.isfinite(out).all()


def test_the_reference_architecture_is_in_the_space_and_builds(space):
    ref = space.reference()
    if ref is None:
        assert space.name == "user"  # every registered space names a hand-designed reference (issue 18)
        return
    assert space.contains(ref)
    shape, x, out_shape = forward_cases(space)[0]
    with torch.no_grad():
        assert space.build(ref, shape).eval()(x).shape == out_shape


def test_json_pickle_and_text_round_trips(space):
    rng = np.random.default_rng(1)
    for _ in range(5):
        arch = space.sample(rng)
        again = Architecture.from_json(json.loads(json.dumps(json.loads(arch.to_json()))))
        assert again == arch and hash(again) == hash(arch)
        assert space.parse(arch.to_json()) == arch
        assert pickle.loads(pickle.dumps(arch)) == arch
        text = space.format(arch)
        assert isinstance(text, str) and text
        if space.parser is not None:
            assert space.parse(text) == arch


def test_mutate_changes_one_decision_and_stays_in_space(space):
    rng = np.random.default_rng(2)
    arch = space.sample(rng)
    for _ in range(20):
        child = space.mutate(arch, rng)
        assert space.contains(child) and child != arch
        if not space.conditional:
            assert sum(child[k] != arch[k] for k in space.labels) == 1
        arch = child


def test_neighbours_are_one_step_away_and_in_space(space):
    arch = space.sample(np.random.default_rng(3))
    nbrs = space.neighbours(arch)
    assert nbrs and len(set(nbrs)) == len(nbrs) and arch not in nbrs
    for n in nbrs[:50]:
        assert space.contains(n)
        # one step: one decision changed among those that matter to both (a conditional space such as mbconv's
        # depths also resets the decisions a step deactivates to their canonical first option)
        both = space.active(arch) & space.active(n)
        assert sum(n[k] != arch[k] for k in both) == 1


def test_encoding_has_fixed_length_and_distinguishes(space):
    rng = np.random.default_rng(4)
    archs = [space.sample(rng) for _ in range(4)]
    codes = [space.encode(a) for a in archs]
    assert all(c.shape == (space.encoding_width,) and np.isfinite(c).all() for c in codes)
    for a, ca in zip(archs, codes):
        assert np.array_equal(space.encode(a), ca)  # deterministic
        assert space.from_indices(space.indices(a)) == a
        for b, cb in zip(archs, codes):
            assert (a == b) == bool(np.array_equal(ca, cb))


def test_membership_check_rejects_what_is_not_in_the_space(space):
    arch = space.sample(np.random.default_rng(5))
    d = arch.to_dict()
    assert space.validate(d) == arch
    with pytest.raises(ArchitectureError, match="unknown decision"):
        space.validate({**d, "no_such_decision": 1})
    missing = dict(d)
    missing.pop(space.labels[0])
    with pytest.raises(ArchitectureError, match="no choice"):
        space.validate(missing)
    with pytest.raises(ArchitectureError, match="not one of"):
        space.validate({**d, space.labels[-1]: "not-an-option"})


def test_sampling_and_mutation_are_seeded(space):
    def walk(seed):
        rng = np.random.default_rng(seed)
        arch = space.sample(rng)
        return [arch] + [arch := space.mutate(arch, rng) for _ in range(5)]
    assert walk(7) == walk(7)
    assert walk(7) != walk(8)


# ---- strategies --------------------------------------------------------------------------------------------------
STRATEGY_SPACES = {"nb201": {}, "macro": {"layers": 4}}


@pytest.fixture(params=sorted(STRATEGY_SPACES))
def strategy_space(request):
    return get_space(request.param, **STRATEGY_SPACES[request.param])


def _drive(name, space, target, n, seed):
    return drive(make_strategy(name, space, seed=seed), space, target, n)


@pytest.mark.parametrize("name", STRATEGIES.names())
def test_asks_valid_architectures_and_is_deterministic(name, strategy_space):
    space = strategy_space
    target = space.sample(np.random.default_rng(99))
    _, a = _drive(name, space, target, 25, seed=3)
    _, b = _drive(name, space, target, 25, seed=3)
    assert all(space.contains(x) for x in a)
    assert a == b
    _, c = _drive(name, space, target, 25, seed=4)
    assert a != c


@pytest.mark.parametrize("name", STRATEGIES.names())
def test_several_asks_in_flight_and_tells_in_any_order(name, strategy_space):
    space = strategy_space
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


@pytest.fixture(scope="module")
def table():
    ev = EVALUATORS.get("tabular")(get_space("nb201"))
    vals = np.array([r.val_accuracy for r in ev.rows.values()])
    return {"p75": float(np.quantile(vals, 0.75))}


def _tabular_study(tmp_path, name, trials, dirname):
    return Study.create(space="nb201", strategy=name, evaluator="tabular", budget=Budget(trials=trials), seed=5,
                        run_dir=tmp_path / dirname, reference=False)


@pytest.mark.parametrize("name", STRATEGIES.names())
def test_a_tabular_search_finds_good_cells_and_resumes_as_if_never_stopped(name, tmp_path, table):
    """On the NAS-Bench-201 table through the run store: 20 trials reach the table's top quarter, and a run stopped
    after 8 trials resumes (a fresh strategy, its state rebuilt from the store) to the same 20 trials."""
    full = _tabular_study(tmp_path, name, 20, "full").run()
    assert full.counts.get("ok", 0) >= 16
    assert full.best.value >= table["p75"], (full.best.value, table["p75"])
    part = _tabular_study(tmp_path, name, 20, "part")
    part.budget = Budget(trials=8)  # as if killed after 8 trials
    part.run()
    part.release()
    kept = [(t.arch, t.value) for t in RunStore(tmp_path / "part").trials()]
    assert len(kept) == 8
    resumed = Study.resume(tmp_path / "part").run()
    assert [(t.arch, t.value) for t in resumed.trials[:8]] == kept  # nothing finished is changed
    assert [t.arch for t in resumed.trials] == [t.arch for t in full.trials]
