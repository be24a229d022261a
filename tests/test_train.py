"""The training loop and the training evaluator: real, tiny, reproducible."""
from __future__ import annotations

import numpy as np
import torch

from archsearch.evaluators import make_evaluator
from archsearch.spaces import get_space


def test_training_is_reproducible_and_learns():
    space = get_space("macro", layers=2)
    arch = space.sample(np.random.default_rng(3))
    arch = arch.replace(l0_op="conv", l1_op="conv")
    ev = make_evaluator("train", space, epochs=2)
    a, b = ev.evaluate(arch, seed=5), ev.evaluate(arch, seed=5)
    assert a.ok and b.ok
    assert a.metrics["val_accuracy"] == b.metrics["val_accuracy"]
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)
    assert a.metrics["val_accuracy"] > 60.0  # 10 classes: chance is 10%
    c = ev.evaluate(arch, seed=6)
    assert any(not torch.equal(a.state_dict[k], c.state_dict[k]) for k in a.state_dict)


def test_fidelity_overrides_epochs():
    space = get_space("macro", layers=1)
    ev = make_evaluator("train", space, epochs=3)
    r = ev.evaluate(space.sample(np.random.default_rng(0)), seed=0, fidelity=1)
    assert r.metrics["epochs"] == 1
