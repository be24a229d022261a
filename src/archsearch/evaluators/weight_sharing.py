"""Weight-sharing evaluation: rank architectures with one trained supernet instead of training each one.

SPOS (Guo et al., "Single Path One-Shot Neural Architecture Search with Uniform Sampling", ECCV 2020): the supernet
of the space is trained once, each step on a path drawn uniformly from the space
(:class:`archsearch.strategies.oneshot.spos.SPOS`); ``evaluate(arch)`` is then the validation accuracy of
``arch``'s path with the inherited weights, after recalibrating BN statistics on a few fixed training batches (the
running statistics of a supernet mix every path's). Any black-box strategy can use it:
``archsearch search --strategy evolution --evaluator weight-sharing``.

Deterministic: the supernet is trained from ``seed`` (the evaluator's, not the trial's: every architecture is
ranked by the same weights), on first use, in each process that evaluates; the calibration batches are fixed, so
``evaluate`` does not depend on the order of calls. Value choices (widths, kernel sizes) are fixed in the supernet
(see :mod:`archsearch.strategies.oneshot.supernet`): an architecture is evaluated with the supernet's values, and
``ws_values_fixed`` counts the value choices that differ from it. The estimate is a ranking signal, not a final
accuracy: train the best architectures from scratch (``archsearch evaluate --arch RUN/best.json``).
"""
from __future__ import annotations

import time
from typing import Any

from ..result import Result
from ..space import Architecture, SearchSpace
from ..training.loop import accuracy
from .base import register_evaluator
from ..datasets import cached_data


@register_evaluator("weight-sharing")
class WeightSharingEvaluator:
    """Validation accuracy of an architecture's path through a uniformly trained (SPOS) supernet."""

    reports = frozenset({"val_accuracy", "test_accuracy", "ws_eval_seconds", "ws_supernet_seconds",
                         "ws_values_fixed"})
    fidelities = ()  # (its --epochs train the one supernet, not each trial)

    keep_weights = False  # the inherited weights live in the supernet; best.pt is not written

    def __init__(self, space: SearchSpace, data: str | None = None, epochs: int = 5, batch_size: int = 64,
                 lr: float = 0.025, seed: int = 0, bn_batches: int = 4, device: str | None = None,
                 fixed_values: dict | None = None, search_config: dict | None = None):
        if epochs < 1:
            raise ValueError("the weight-sharing evaluator needs epochs >= 1")
        self.space, self.data_spec = space, data
        self.options = {"epochs": int(epochs), "batch_size": int(batch_size), "lr": float(lr), "seed": int(seed),
                        "bn_batches": int(bn_batches), "device": device, "fixed_values": fixed_values,
                        "search_config": search_config}
        self._spos = None
        self.train_seconds = 0.0

    def config(self) -> dict[str, Any]:
        return {"data": self.data_spec, **self.options}

    @property
    def supernet(self):
        """The trained SPOS strategy (its supernet and path evaluation); trained on first use."""
        if self._spos is None:
            from ..strategies.oneshot.spos import SPOS

            o = self.options
            t0 = time.perf_counter()
            spos = SPOS(self.space, cached_data(self.data_spec), o["epochs"], seed=o["seed"], device=o["device"],
                        batch_size=o["batch_size"], w_lr=o["lr"], bn_batches=o["bn_batches"],
                        fixed_values=o["fixed_values"], search_config=o["search_config"])
            for _ in range(o["epochs"]):
                spos.train_epoch()
            self.train_seconds = time.perf_counter() - t0
            self._spos = spos
        return self._spos

    def evaluate(self, arch: Architecture, seed: int = 0, fidelity: float | None = None) -> Result:
        spos = self.supernet
        t0 = time.perf_counter()
        arch = self.space.validate(arch)
        shared = spos.supernet.with_values(arch)
        val = spos.path_accuracy(shared)  # sets the path and recalibrates BN, then the test split on the same
        test = accuracy(spos.model, spos.data.x_test, spos.data.y_test, device=spos.device)
        seconds = time.perf_counter() - t0
        differ = sum(1 for k in arch if arch[k] != shared[k])
        return Result(metrics={"val_accuracy": val, "test_accuracy": test, "ws_eval_seconds": seconds,
                               "ws_supernet_seconds": self.train_seconds, "ws_values_fixed": float(differ)},
                      cost_seconds=seconds)
