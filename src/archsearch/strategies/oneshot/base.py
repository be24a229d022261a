"""What every one-shot strategy shares: options, the registry, and the one search loop.

A one-shot strategy owns a supernet (:mod:`.supernet`) and its architecture parameters, runs epochs and derives an
architecture. The loop is the same for all of them (DARTS's ``train`` function): each training batch is paired
with a validation batch (cycled), and the strategy's :meth:`OneShotStrategy.step` updates w on the first and, when
it searches α by gradient, α on the second. Weights use SGD with momentum and a cosine schedule, α uses Adam, both
as in DARTS unless a strategy changes them. All randomness (batch order, Gumbel noise, sampled paths) comes from
one seeded ``torch.Generator`` whose state is checkpointed with everything else, so a resumed search continues
exactly as an uninterrupted one.
"""
from __future__ import annotations

import time

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from ...datasets import Dataset
from ...errors import UserError
from ...registry import Registry
from ...space import Architecture, SearchSpace
from ...training.loop import TrainingDiverged, accuracy, pick_device
from .distributed import DataParallel
from .latency_loss import expected_cost, load_cost_table
from .supernet import Supernet, build_supernet


@dataclass
class OneShotOptions:
    """Options of every one-shot strategy (``--strategy-opt KEY=VALUE``). Defaults are DARTS's."""

    batch_size: int = 64
    w_lr: float = 0.025  # SGD, momentum 0.9, cosine schedule down to w_lr_min over the search
    w_lr_min: float = 0.001
    w_momentum: float = 0.9
    w_weight_decay: float = 3e-4
    grad_clip: float = 5.0
    alpha_lr: float = 3e-4  # Adam for α, betas (alpha_beta1, 0.999)
    alpha_beta1: float = 0.5
    alpha_weight_decay: float = 1e-3
    fixed_values: dict | None = None  # value choices during the search: {label: value} (default: largest number)
    search_config: dict | None = None  # space settings for the supernet only, e.g. {"channels": 8}
    latency_weight: float = 0.0  # λ of the expected-cost loss term (see latency_loss.py)
    cost_table: Any = None  # a JSON file, {"label/candidate": ms} or {"candidate": ms}
    bn_batches: int = 4  # training batches that recalibrate BN before a single path is evaluated
    dtype: str = "float32"  # "float64": the search in double precision (about 2x slower), for exactness checks


DTYPES = {"float32": torch.float32, "float64": torch.float64}


def parse_options(cls: type, strategy: str, options: dict[str, Any]) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise UserError(f"one-shot strategy {strategy!r} has no option {unknown[0]!r}; "
                        f"its options: {', '.join(sorted(names))}")
    opts = cls(**options)
    for f in dataclasses.fields(cls):
        v = getattr(opts, f.name)
        if f.type in ("int", "float") and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise UserError(f"one-shot option {f.name}={v!r}: expected a number")
    if opts.batch_size < 2:
        raise UserError(f"one-shot option batch_size must be at least 2, got {opts.batch_size}")
    if opts.dtype not in DTYPES:
        raise UserError(f"one-shot option dtype must be one of {', '.join(DTYPES)}, got {opts.dtype!r}")
    return opts


class OneShotStrategy:
    """Base class: subclasses set ``name``, ``Options`` and write :meth:`step` (and, if it differs, how the
    architecture is derived and evaluated)."""

    name = "oneshot"
    Options: type = OneShotOptions
    searches_alpha = True

    def __init__(self, space: SearchSpace, data: Dataset, epochs: int, seed: int = 0, device: str | None = None,
                 **options: Any):
        if epochs < 1:
            raise UserError(f"a one-shot search needs at least one epoch, got {epochs}")
        self.opts = parse_options(self.Options, self.name, options)
        self.space, self.data, self.seed = space, data, int(seed)
        self.total_epochs = int(epochs)
        self.epoch = 0
        self.device = pick_device(device)
        try:
            self.supernet: Supernet = build_supernet(space, data.shape, seed, self.opts.fixed_values,
                                                     self.opts.search_config)
        except (ValueError, TypeError) as e:
            raise UserError(f"cannot build the supernet of space {space.name!r}: {e}") from None
        dtype = DTYPES[self.opts.dtype]
        self.model = self.supernet.model.to(self.device, dtype)
        self.supernet.alphas.to(self.device, dtype)
        self.state = self.supernet.state
        self.gen = torch.Generator().manual_seed(self.seed)  # batch order, noise, sampled paths
        self.rng = np.random.default_rng(self.seed)  # architectures sampled from the space
        o = self.opts
        self.w_opt = torch.optim.SGD(self.supernet.weights(), lr=o.w_lr, momentum=o.w_momentum,
                                     weight_decay=o.w_weight_decay)
        self.a_opt = torch.optim.Adam(self.supernet.alphas.parameters(), lr=o.alpha_lr,
                                      betas=(o.alpha_beta1, 0.999), weight_decay=o.alpha_weight_decay)
        if o.latency_weight and o.cost_table is None:
            raise UserError("one-shot option latency_weight needs a cost_table (a JSON file of costs per op)")
        self.cost_vectors = load_cost_table(o.cost_table, self.supernet, data.shape) if o.latency_weight else {}
        d = self.device
        def put(x: torch.Tensor) -> torch.Tensor:  # images take the search's dtype; token ids stay integers
            return x.to(d, dtype) if x.is_floating_point() else x.to(d)
        self.x_train, self.y_train = put(data.x_train), data.y_train.to(d)
        self.x_val, self.y_val = put(data.x_val), data.y_val.to(d)
        calib = torch.randperm(len(self.y_train), generator=torch.Generator().manual_seed(self.seed + 1))
        self.calib_idx = calib[: o.bn_batches * o.batch_size].to(d)
        self.dp: DataParallel | None = None  # set by a data-parallel run (see distributed.py)
        self.deadline: float | None = None  # time.time() when the search budget ends (checked every batch)
        self.partial = False  # the last epoch was cut short by the deadline
        # the last training step's and validation pass's seconds: work expected to end past the deadline is not
        # begun (one DARTS step on 28x28 inputs takes ~10 s on 2 cores: checking only that the deadline has not
        # passed would overrun a budget by up to a step)
        self._step_s = 0.0
        self._eval_s: float | None = None
        self.epoch_steps = 0  # training steps the last epoch ran

    # --- the loop --------------------------------------------------------------------------------------------------
    def run_epoch(self) -> dict[str, float]:
        """:meth:`train_epoch`, then the epoch's metrics (training loss, the supernet's validation accuracy; not
        measured after an epoch the budget cut short: that pass over the validation split would run past it)."""
        lr = self._lr()
        t0 = time.perf_counter()
        loss = self.train_epoch()
        metrics = {"train_loss": loss, "w_lr": lr} if self.epoch_steps else {"w_lr": lr}
        if self.partial or self._out_of_time(self._eval_estimate(time.perf_counter() - t0)):
            return metrics
        t1 = time.perf_counter()
        acc = self.supernet_accuracy()
        self._eval_s = time.perf_counter() - t1
        return {**metrics, "val_accuracy": acc}

    def _eval_estimate(self, epoch_s: float) -> float:
        """Seconds the next validation pass will take: the last one's, before the first a guess from the epoch's
        (a forward pass over the validation split; an epoch ran a forward and backward pass for each training
        batch and a validation batch)."""
        if self._eval_s is not None:
            return self._eval_s
        return epoch_s * len(self.y_val) / max(1, len(self.y_train)) / 2

    def train_epoch(self) -> float:
        """One pass over the training split (w) paired with the validation split (α); the mean training loss."""
        for g in self.w_opt.param_groups:
            g["lr"] = self._lr()
        self.model.train()
        losses = []
        self.partial = False
        for (xt, yt), (xv, yv) in zip(self._batches(self.x_train, self.y_train),
                                      self._cycle(self.x_val, self.y_val)):
            if self._out_of_time(self._step_s):  # a step that would end past the deadline is not begun
                self.partial = True
                break
            t = time.perf_counter()
            losses.append(self.step(xt, yt, xv, yv))
            self._step_s = time.perf_counter() - t
        self.epoch_steps = len(losses)
        mean = sum(losses) / max(1, len(losses))
        if self.dp is not None:
            self.dp.average_buffers(self.model)
            mean = self.dp.sum([mean])[0] / self.dp.world
        if not self.partial:  # a partial epoch (the budget ran out) skips the once-per-epoch work
            self.end_epoch()
        self.epoch += 1
        return mean

    def _out_of_time(self, ahead: float = 0.0) -> bool:
        """The budget's deadline passed, or will have ``ahead`` seconds from now (the expected time of the next
        piece of work; data-parallel: rank 0 decides and every rank stops at the same batch)."""
        late = self.deadline is not None and time.time() + ahead >= self.deadline
        if self.dp is not None:
            return not self.dp.go_on(not late)
        return late

    def step(self, xt: torch.Tensor, yt: torch.Tensor, xv: torch.Tensor, yv: torch.Tensor) -> float:
        """Update on one training batch (w) and one validation batch (α); return the training loss."""
        raise NotImplementedError

    def end_epoch(self) -> None:
        """Work done once per epoch after the batches (NASIB updates α here)."""

    def derive(self) -> Architecture:
        """The discrete architecture found so far."""
        return self.supernet.derive()

    def epoch_architecture(self) -> Architecture | None:
        """The architecture recorded after each epoch (None where deriving is expensive)."""
        return self.derive()

    def supernet_accuracy(self) -> float:
        """Validation accuracy of the supernet: by default of the derived architecture's path with the shared
        weights (BN recalibrated)."""
        return self.path_accuracy(self.derive())

    # --- building blocks -------------------------------------------------------------------------------------------
    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        loss = F.cross_entropy(out[0] if isinstance(out, (tuple, list)) else out, y)
        if self.dp is not None:  # this rank's share of the whole batch's mean loss (slices may differ in size)
            loss = loss * self.dp.loss_scale(len(y))
        if not torch.isfinite(loss):
            raise TrainingDiverged(f"the supernet's loss became {loss.item()} in epoch {self.epoch + 1}")
        return loss

    def w_step(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """One SGD step of the weights on a training batch (in whatever mode the path state is in)."""
        self.w_opt.zero_grad(set_to_none=True)
        loss = self.loss(x, y)
        loss.backward(inputs=self.supernet.weights())
        if self.dp is not None:
            self.dp.average_grads(self.supernet.weights())
        if self.opts.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.supernet.weights(), self.opts.grad_clip)
        self.w_opt.step()
        return float(loss.detach())

    def alpha_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Validation loss plus λ·E[cost] (ProxylessNAS's latency term, any strategy may use it)."""
        loss = self.loss(x, y)
        if self.cost_vectors:
            loss = loss + self.opts.latency_weight * expected_cost(self.supernet, self.cost_vectors)
        return loss

    def alpha_step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """One Adam step of α on a validation batch (first-order: w held fixed)."""
        self.a_opt.zero_grad(set_to_none=True)
        self.alpha_loss(x, y).backward(inputs=self.supernet.alphas.parameters())
        if self.dp is not None:
            self.dp.average_grads(self.supernet.alphas.parameters())
        self.a_opt.step()

    def uniform(self, n: int) -> torch.Tensor:
        return torch.rand(n, generator=self.gen).to(self.device)

    def multinomial(self, probs: torch.Tensor, k: int = 1) -> list[int]:
        """k distinct indices drawn with probability ∝ probs (from the strategy's generator)."""
        return [int(i) for i in torch.multinomial(probs.detach().cpu().float(), k, replacement=False,
                                                  generator=self.gen)]

    @torch.no_grad()
    def recalibrate_bn(self) -> None:
        """Recompute BN statistics on a few fixed training batches in the current mode (SPOS, Guo et al. 2020)."""
        bns = [m for m in self.model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        momenta = [m.momentum for m in bns]
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # a plain average over the calibration batches
        was = self.model.training
        self.model.train()
        bs = self.opts.batch_size
        for i in range(0, len(self.calib_idx), bs):
            idx = self.calib_idx[i:i + bs]
            if self.dp is not None:  # each rank its slice; the synced BatchNorm sees the whole batch
                if len(idx) >= 2 * self.dp.world:
                    self.model(self.x_train[self.dp.shard(idx)])
            elif len(idx) > 1:
                self.model(self.x_train[idx])
        for m, mom in zip(bns, momenta):
            m.momentum = mom
        self.model.train(was)

    def path_accuracy(self, arch: Architecture, x: torch.Tensor | None = None, y: torch.Tensor | None = None) -> float:
        """Accuracy (percent, validation split by default) of ``arch`` run on the shared weights."""
        self.state.set("path", self.supernet.path_of(self.supernet.with_values(arch)))
        self.recalibrate_bn()
        return self.accuracy(self.x_val if x is None else x, self.y_val if y is None else y)

    def accuracy(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """The model's accuracy (percent) on (x, y) in its current mode; split over the ranks when data-parallel."""
        if self.dp is None:
            return accuracy(self.model, x, y, device=self.device)
        idx = self.dp.shard(torch.arange(len(y), device=x.device))
        mine = accuracy(self.model, x[idx], y[idx], device=self.device) if len(idx) else 0.0
        correct, total = self.dp.sum([mine * len(idx) / 100.0, len(idx)])
        return 100.0 * correct / max(1.0, total)

    def _lr(self) -> float:
        """The weights' learning rate this epoch: cosine from w_lr to w_lr_min over the search (DARTS)."""
        o, t = self.opts, self.epoch / max(1, self.total_epochs)
        return o.w_lr_min + 0.5 * (o.w_lr - o.w_lr_min) * (1 + math.cos(math.pi * min(1.0, t)))

    def _batches(self, x: torch.Tensor, y: torch.Tensor) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        perm = torch.randperm(len(y), generator=self.gen).to(self.device)
        bs = self.opts.batch_size
        for i in range(0, len(y), bs):
            idx = perm[i:i + bs]
            if self.dp is not None:  # every rank its slice of the same batch (the same decision on every rank)
                if len(idx) >= 2 * self.dp.world:
                    idx = self.dp.shard(idx)
                    yield x[idx], y[idx]
            elif len(idx) > 1:  # BatchNorm cannot train on one sample
                yield x[idx], y[idx]

    def _cycle(self, x: torch.Tensor, y: torch.Tensor) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        while True:
            yield from self._batches(x, y)

    # --- checkpoints -----------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "total_epochs": self.total_epochs, "model": self.model.state_dict(),
                "alphas": self.supernet.alphas.state_dict(), "w_opt": self.w_opt.state_dict(),
                "a_opt": self.a_opt.state_dict(), "gen": self.gen.get_state(), "rng": self.rng.bit_generator.state,
                "extra": self.extra_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.total_epochs = int(state["epoch"]), int(state["total_epochs"])
        self.model.load_state_dict(state["model"])
        self.supernet.alphas.load_state_dict(state["alphas"])
        self.w_opt.load_state_dict(state["w_opt"])
        self.a_opt.load_state_dict(state["a_opt"])
        self.gen.set_state(state["gen"])
        self.rng.bit_generator.state = state["rng"]
        self.load_extra_state(state.get("extra") or {})

    def extra_state(self) -> dict[str, Any]:
        """A strategy's own state to checkpoint (controller, sampling counts ...)."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass


ONESHOT: Registry[Callable[..., OneShotStrategy]] = Registry("one-shot strategy")


def register_oneshot(name: str):
    def deco(cls):
        cls.name = name
        return ONESHOT.register(name)(cls)
    return deco


def make_oneshot(name: str, space: SearchSpace, data: Dataset, epochs: int, seed: int = 0,
                 device: str | None = None, **options: Any) -> OneShotStrategy:
    return ONESHOT.get(name)(space, data, epochs, seed=seed, device=device, **options)
