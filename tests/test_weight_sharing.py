"""The weight-sharing evaluator: a SPOS supernet ranks architectures; deterministic; usable by any study."""
from __future__ import annotations

import json

import numpy as np
import pytest

from archsearch.evaluators import make_evaluator
from archsearch.spaces import get_space
from archsearch.study import Budget, Study

from conftest import digits_npz

NB201 = {"channels": 4, "cells_per_stage": 1}
OPTIONS = {"epochs": 1, "batch_size": 32, "bn_batches": 1}


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    return digits_npz(tmp_path_factory.mktemp("data") / "tiny.npz", 200)


def test_deterministic_under_seed_and_independent_of_the_order_of_calls(npz):
    space = get_space("nb201", **NB201)
    archs = [space.sample(np.random.default_rng(i)) for i in range(4)]
    a = make_evaluator("weight-sharing", space, data=npz, **OPTIONS)
    b = make_evaluator("weight-sharing", space, data=npz, **OPTIONS)
    forward = [a.evaluate(x).metrics["val_accuracy"] for x in archs]
    backward = [b.evaluate(x).metrics["val_accuracy"] for x in reversed(archs)][::-1]
    assert forward == backward
    assert len(set(forward)) > 1  # it ranks: different paths, different accuracies
    assert a.evaluate(archs[0]).metrics["val_accuracy"] == forward[0]
    other_seed = make_evaluator("weight-sharing", space, data=npz, seed=1, **OPTIONS)
    assert [other_seed.evaluate(x).metrics["val_accuracy"] for x in archs] != forward


def test_value_choices_use_the_supernets_values(npz):
    space = get_space("macro", layers=2, filters=[8, 12], kernels=[3, 5])
    ev = make_evaluator("weight-sharing", space, data=npz, **OPTIONS)
    arch = space.sample(np.random.default_rng(0)).replace(l0_kernel=3, l0_filters=12, l1_kernel=5, l1_filters=12)
    m = ev.evaluate(arch).metrics
    assert m["ws_values_fixed"] == 1 and 0 <= m["val_accuracy"] <= 100


def test_evolution_searches_with_the_weight_sharing_evaluator(tmp_path, npz):
    study = Study.create(space="nb201", strategy="evolution", evaluator="weight-sharing", budget=Budget(trials=6),
                         space_config=NB201, strategy_options={"population": 3, "sample_size": 2},
                         evaluator_options={"data": npz, **OPTIONS}, run_dir=tmp_path / "run")
    summary = study.run()
    assert summary.counts == {"ok": 6}
    best = json.loads((tmp_path / "run" / "best.json").read_text())
    assert best["val_accuracy"] == max(t.metrics["val_accuracy"] for t in summary.trials)
    assert best["weights"] is None  # the inherited weights stay in the supernet
