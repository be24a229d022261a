"""UNAS: Vahdat, Mallya, Liu & Kautz, "UNAS: Differentiable Architecture Search Meets Reinforcement Learning",
CVPR 2020.

The search minimises E_{z ~ p_α}[L(z)] over a distribution p_α of architectures z (one categorical per decision,
independent Bernoulli gates for multi-input decisions). The loss splits into a differentiable part, the validation
cross-entropy, and a part that is a black box of z, such as the latency measured on the device:

    ∇_α E[L] = ∇_α E[CE(w, z)]  +  λ · E[(C(z) − b) · ∇_α log p_α(z)].

The first term is estimated through a Gumbel-softmax sample of z, one-hot in the forward pass with the relaxed
sample's gradient (as in GDAS, whose sampling this reuses); the second by REINFORCE on *the same* discrete sample
z, with b a moving average of C as the variance-reducing baseline (Sec. 3-4). C needs no differentiable model:

* ``cost_table`` given: C(z) = Σ over decisions of the sampled candidates' costs (a table of measured per-op
  latencies, see latency_loss.py), evaluated as a black box;
* no table: C(z) = the latency in ms of the architecture z stands for, built at the space's own size and timed on
  this machine (``latency_device``, one thread, by default on the thread's CPU-time clock, which other processes
  on a shared machine disturb far less than wall time; each architecture measured once and cached).

Weights are trained on single sampled paths, as in GDAS. The derived architecture is the most likely one
(argmax α; DARTS's top-2 edges for the ``cell`` space). Left out: UNAS's generalisation-gap term and its
RELAX-style control variate for the cross-entropy part (the paper's ablation shows the Gumbel-softmax estimator
alone is competitive).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F

from ...errors import UserError
from ...space import Architecture
from .base import register_oneshot
from .gdas import GDAS, GDASOptions
from .latency_loss import load_cost_table


@dataclass
class UNASOptions(GDASOptions):
    tau_max: float = 5.0
    tau_min: float = 0.5
    baseline_decay: float = 0.9
    latency_device: str = "cpu"  # where sampled architectures are timed when there is no cost table
    latency_repeats: int = 10
    latency_clock: str = "cpu"  # "cpu": the thread's CPU time (steady on a shared machine), or "wall"


@register_oneshot("unas")
class UNAS(GDAS):
    """Gumbel-softmax gradient of the cross-entropy + REINFORCE gradient of a black-box cost (latency)."""

    Options = UNASOptions

    def __init__(self, *args, cost_fn: Callable[[Architecture], float] | None = None, **options: Any):
        # λ and the table are UNAS's own: the base class would add a differentiable expected-cost term instead
        lam, table = options.pop("latency_weight", 0.0), options.pop("cost_table", None)
        super().__init__(*args, **options)
        if isinstance(lam, bool) or not isinstance(lam, (int, float)) or lam < 0:
            raise UserError(f"UNAS option latency_weight must be a number >= 0, got {lam!r}")
        self.opts.latency_weight, self.opts.cost_table = float(lam), table
        if self.opts.latency_clock not in ("cpu", "wall"):
            raise UserError(f"UNAS option latency_clock must be cpu or wall, got {self.opts.latency_clock!r}")
        if self.opts.latency_clock == "cpu" and self.opts.latency_device != "cpu":
            raise UserError("UNAS: the cpu latency clock times the CPU; use latency_clock=wall on another device")
        self.table = load_cost_table(table, self.supernet, self.data.shape) if table is not None else {}
        self.cost_fn = cost_fn  # Python API: any black-box cost of an architecture
        self.baseline: float | None = None
        self._latency_cache: dict[Architecture, float] = {}

    # --- the non-differentiable cost -------------------------------------------------------------------------------
    def sample(self) -> dict[str, torch.Tensor]:
        """The discrete z of the current Gumbel sample: a candidate index per decision, 0/1 gates for inputs."""
        out = {}
        for label, g in self.state.gates.items():
            g = g.detach()
            out[label] = g.argmax() if self.supernet.n_chosen(label) == 1 else (g > 0.5).to(g.dtype)
        return out

    def log_prob(self, z: dict[str, torch.Tensor]) -> torch.Tensor:
        """log p_α(z), differentiable in α."""
        total = 0.0
        for label, a in self.supernet.alphas.tensors.items():
            if self.supernet.n_chosen(label) == 1:
                total = total + F.log_softmax(a, 0)[z[label]]
            else:
                total = total + (z[label] * F.logsigmoid(a) + (1 - z[label]) * F.logsigmoid(-a)).sum()
        return total

    def architecture_of(self, z: dict[str, torch.Tensor]) -> Architecture:
        """The architecture of the space that the sample z stands for (ties broken by α)."""
        scores = {}
        for label, a in self.supernet.alphas.tensors.items():
            a = a.detach().cpu()
            zl = z[label].cpu()
            if self.supernet.n_chosen(label) == 1:
                scores[label] = F.one_hot(zl, len(a)).float() + 1e-3 * F.softmax(a, 0)
            elif self.supernet.n_chosen(label) is None:
                scores[label] = 2 * zl - 1
            else:
                scores[label] = zl + 1e-3 * torch.sigmoid(a)
        return self.supernet.derive(scores)

    def cost(self, z: dict[str, torch.Tensor]) -> float:
        """C(z): the table's sum over the sampled candidates, or the measured latency of z's architecture."""
        if self.table:
            return float(sum(float(c[int(z[label])]) if self.supernet.n_chosen(label) == 1
                             else float((c * z[label]).sum()) for label, c in self.table.items()))
        arch = self.architecture_of(z)
        if self.cost_fn is not None:
            return float(self.cost_fn(arch))
        return self.measured_latency(arch)

    def measured_latency(self, arch: Architecture) -> float:
        if arch not in self._latency_cache:
            from ...hardware.cost import measure_latency
            shape = self.data.shape
            with torch.random.fork_rng(devices=[]):
                model = self.space.build(arch, shape)
            stats = measure_latency(model, shape.size, device=self.opts.latency_device, threads=1, warmup=2,
                                    repeats=self.opts.latency_repeats, max_seconds=0.5, min_repeats=3,
                                    copy_model=False, clock=self.opts.latency_clock)
            self._latency_cache[arch] = stats.median_ms
        return self._latency_cache[arch]

    # --- the step --------------------------------------------------------------------------------------------------
    def alpha_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """CE through the Gumbel sample + λ·(C(z) − b)·log p_α(z) (the surrogate whose gradient is REINFORCE's)."""
        loss = self.loss(x, y)
        if self.opts.latency_weight:
            z = self.sample()
            c = self.cost(z)
            if self.baseline is None:
                self.baseline = c
            loss = loss + self.opts.latency_weight * (c - self.baseline) * self.log_prob(z)
            d = self.opts.baseline_decay
            self.baseline = d * self.baseline + (1 - d) * c
        return loss

    def extra_state(self) -> dict[str, Any]:
        return {"baseline": self.baseline}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.baseline = state.get("baseline")
