"""NASIB: Singh, Garg, Zhou, Dubey & Dutta, "Neural Architecture Search withIn Budget", NeurIPS 2019 Meta-Learning
workshop.

The budget is compute time: the search runs ``total_epochs = budget_seconds / seconds of one epoch`` epochs (the
first epoch is timed unless ``epoch_seconds`` is given), and its exploration schedule is stretched over exactly
that many steps. Each step and for each decision (layer) a policy is drawn: exploration P1 with probability p1,
else exploitation P2; the policy then samples two candidates (without replacement):

* P1: p_i ∝ exp(−freq_i), freq_i the times candidate i was sampled so far (eq. 3): under-explored ops first;
* P2: p_i ∝ exp(α_i / λ) with a small λ (eq. 4): the best ops so far.

p1 decays exponentially from ``p1_start`` to ``p1_end`` over the run. Weights are updated on every training batch
with the two candidates summed (eq. 1); after each epoch α is updated on the validation split with the softmax of
the two sampled candidates' α (eq. 2). The derived architecture keeps the candidate with the highest α per layer.
Memory per step is that of two paths, which is what makes the 81-candidate superkernel space
(:mod:`archsearch.spaces.superkernel`) searchable.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ...errors import UserError
from .base import OneShotOptions, OneShotStrategy, register_oneshot


def epochs_for_budget(budget_seconds: float, epoch_seconds: float) -> int:
    """NASIB's Algorithm 1: total epochs = available time / time of one epoch (at least one)."""
    return max(1, int(budget_seconds // max(epoch_seconds, 1e-9)))


@dataclass
class NASIBOptions(OneShotOptions):
    p1_start: float = 1.0  # probability of the exploration policy at the first step
    p1_end: float = 0.01  # ... at the last step (exponential decay in between)
    lam: float = 0.01  # λ of the exploitation policy
    candidates: int = 2  # candidates sampled per decision and step
    budget_seconds: float | None = None  # compute budget; None: run the given number of epochs
    epoch_seconds: float | None = None  # seconds of one epoch if known (else the first epoch is timed)

    def __post_init__(self):
        if not 0 < self.p1_end <= self.p1_start <= 1 or self.lam <= 0 or self.candidates < 1:
            raise UserError("NASIB needs 0 < p1_end <= p1_start <= 1, lam > 0 and candidates >= 1")
        if self.budget_seconds is not None and self.budget_seconds <= 0:
            raise UserError(f"NASIB's budget_seconds must be positive, got {self.budget_seconds}")


@register_oneshot("nasib")
class NASIB(OneShotStrategy):
    """Budget-aware sampled two-path search with exploration/exploitation policies."""

    Options = NASIBOptions

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        o = self.opts
        self.freq = {label: torch.zeros(len(a)) for label, a in self.supernet.alphas.tensors.items()}
        self.steps = 0
        self.steps_per_epoch = sum(1 for i in range(0, len(self.y_train), o.batch_size)
                                   if len(self.y_train[i:i + o.batch_size]) > 1)
        self.epoch_seconds = o.epoch_seconds
        if o.budget_seconds is not None and self.epoch_seconds is not None:
            self.total_epochs = epochs_for_budget(o.budget_seconds, self.epoch_seconds)

    @property
    def p1(self) -> float:
        """Probability of the exploration policy at the current step: p1_start·(p1_end/p1_start)^(step/steps)."""
        o = self.opts
        if o.budget_seconds is not None and self.epoch_seconds is None:
            return o.p1_start  # the timed first epoch explores; the schedule starts once the budget is known
        frac = min(1.0, self.steps / max(1, self.total_epochs * self.steps_per_epoch - 1))
        return o.p1_start * (o.p1_end / o.p1_start) ** frac

    def sample_path(self) -> dict[str, tuple[int, ...]]:
        path, p1 = {}, self.p1
        for label, a in self.supernet.alphas.tensors.items():
            explore = float(self.uniform(1)[0]) < p1
            probs = F.softmax(-self.freq[label], 0) if explore else F.softmax(a.detach().cpu() / self.opts.lam, 0)
            idx = self.multinomial(probs, min(self.opts.candidates, len(a)))
            self.freq[label][idx] += 1
            path[label] = tuple(idx)
        return path

    def step(self, xt, yt, xv, yv) -> float:
        self.state.set("path", self.sample_path())  # eq. 1: the sampled candidates summed
        loss = self.w_step(xt, yt)
        self.steps += 1
        return loss

    def end_epoch(self) -> None:
        """α on the validation split, eq. 2 (softmax over the sampled candidates' α)."""
        for xv, yv in self._batches(self.x_val, self.y_val):
            self.state.set("softmax", self.sample_path())
            self.alpha_step(xv, yv)

    def run_epoch(self) -> dict[str, float]:
        t0 = time.perf_counter()
        metrics = super().run_epoch()
        if self.opts.budget_seconds is not None and self.epoch_seconds is None:
            self.epoch_seconds = time.perf_counter() - t0
            self.total_epochs = epochs_for_budget(self.opts.budget_seconds, self.epoch_seconds)
        return {**metrics, "p1": self.p1, "total_epochs": float(self.total_epochs)}

    def extra_state(self) -> dict[str, Any]:
        return {"freq": {k: v.clone() for k, v in self.freq.items()}, "steps": self.steps,
                "epoch_seconds": self.epoch_seconds}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.freq = {k: v.clone() for k, v in state["freq"].items()}
        self.steps, self.epoch_seconds = int(state["steps"]), state["epoch_seconds"]


__all__ = ["NASIB", "epochs_for_budget"]
