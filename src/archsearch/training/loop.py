"""The one plain training/evaluation loop used everywhere (search trials, final training, supernet warm-up)."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..datasets import Dataset


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 3e-4
    optimizer: str = "sgd"  # "sgd" (momentum, nesterov) or "adam"
    schedule: str = "cosine"  # "cosine" or "constant"
    grad_clip: float | None = 5.0
    label_smoothing: float = 0.0
    channels_last: bool | None = None  # None: on the CPU for image data (see channels_last())


@dataclass
class TrainResult:
    val_accuracy: float
    test_accuracy: float | None  # None: not measured (a trial paused below a scheduler's top rung)
    train_loss: float
    train_seconds: float
    epochs: int
    history: list[dict[str, float]] = field(default_factory=list)
    val_loss: float = float("nan")


def channels_last(model: nn.Module, x: torch.Tensor, device: torch.device, use: bool | None = None) -> bool:
    """Put a conv model in the channels_last memory format when it pays (``use=None``: on the CPU, for image
    batches): measured 2-5x faster per training step on CPU for every image space, idle and loaded
    (benchmarks/throughput.py, docs/benchmarks.md "Trial throughput"). Returns whether batches should follow."""
    if use is None:
        use = device.type == "cpu"
    if not use or x.dim() != 4:
        return False
    model.to(memory_format=torch.channels_last)
    return True


def to_layout(x: torch.Tensor, last: bool) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if last and x.dim() == 4 else x


def pick_device(device: str | None = None) -> torch.device:
    """'auto' (or None) picks CUDA when available, else CPU."""
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512,
             device: torch.device | None = None) -> float:
    """Top-1 accuracy in percent (of the labels: of every token for sequence targets)."""
    if len(y) == 0:
        return float("nan")
    device = device or next(model.parameters(), torch.empty(0)).device
    was_training = model.training
    model.eval()
    correct = 0
    for i in range(0, len(y), batch_size):
        out = model(x[i:i + batch_size].to(device))
        correct += int((out.argmax(1).cpu() == y[i:i + batch_size]).sum())
    model.train(was_training)
    return 100.0 * correct / y.numel()  # per element: per token for language models (y of shape (N, T))


def optimizer_step(loss: torch.Tensor, opt: torch.optim.Optimizer, sched: Any, params: list[torch.Tensor],
                   grad_clip: float, epoch: int) -> None:
    """One step on ``loss``: refuse a non-finite loss (TrainingDiverged), backward, clip, optimiser, schedule."""
    if not torch.isfinite(loss):
        raise TrainingDiverged(f"loss became {loss.item()} in epoch {epoch + 1}")
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip:
        nn.utils.clip_grad_norm_(params, grad_clip)
    opt.step()
    sched.step()


def _logits(out) -> torch.Tensor:
    return out[0] if isinstance(out, (tuple, list)) else out


class BudgetExhausted(RuntimeError):
    """The run's deadline passed during training (checked between batches); ``history`` holds the finished
    epochs, so a trial stopped by the budget is stored with its partial learning curve."""

    def __init__(self, epochs_done: int, history: list[dict[str, float]]):
        super().__init__(f"stopped by the time budget after {epochs_done} epoch(s)")
        self.epochs_done = epochs_done
        self.history = history


class Trainer:
    """The training loop of one model, resumable at any epoch (model, optimiser, LR schedule, batch-order and
    global RNG states all in :meth:`state_dict`, tensors and numbers only, so it loads with
    ``weights_only=True``). ``horizon`` epochs set the cosine schedule's length: a trial paused at a rung and
    promoted later continues exactly as if it had never stopped (successive halving, Jamieson & Talwalkar 2016)."""

    def __init__(self, model: nn.Module, data: Dataset, cfg: TrainConfig, seed: int = 0, device: str | None = None,
                 horizon: int | None = None):
        self.dev = pick_device(device)
        self.model, self.data, self.cfg = model.to(self.dev), data, cfg
        self.params = [p for p in model.parameters() if p.requires_grad]
        if cfg.optimizer == "adam":
            self.opt: torch.optim.Optimizer = torch.optim.Adam(self.params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        elif cfg.optimizer == "sgd":
            self.opt = torch.optim.SGD(self.params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                                       nesterov=cfg.momentum > 0)
        else:
            raise ValueError(f"unknown optimizer {cfg.optimizer!r}")
        self.n = len(data.y_train)
        self.last = channels_last(self.model, data.x_train, self.dev, cfg.channels_last)
        total = max(1, max(cfg.epochs, horizon or 0) * max(1, math.ceil(self.n / cfg.batch_size)))
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, (lambda s: 0.5 * (1 + math.cos(math.pi * s / total))) if cfg.schedule == "cosine"
            else (lambda s: 1.0))
        self.gen = torch.Generator().manual_seed(seed)
        self.epoch = 0  # whole epochs done
        self.batch = 0  # batches done of the epoch under way (a fidelity of a fraction of an epoch stops there)
        self.perm = torch.empty(0, dtype=torch.long)  # that epoch's batch order
        self.loss_sum, self.loss_n = 0.0, 0  # that epoch's training loss so far
        self.history: list[dict[str, float]] = []
        self.seconds = 0.0
        self.train_loss = float("nan")
        self._val: tuple | None = None  # (epoch, batch, val accuracy, val loss) last measured

    def train_until(self, epochs: float, deadline: float | None = None, validate: bool = False,
                    on_epoch: Callable[[dict[str, float]], None] | None = None) -> None:
        """Train to ``epochs`` (from where it is); a fraction of an epoch trains the first batches of that epoch's
        shuffled order, and a later call goes on from the next batch, exactly as one call would have.
        ``deadline`` (``time.time()``) is checked before every batch (BudgetExhausted); ``validate``: val accuracy
        and loss after every epoch and where it stops (the learning curve)."""
        x_train, y_train = self.data.x_train.to(self.dev), self.data.y_train.to(self.dev)
        bs = self.cfg.batch_size
        nb = max(1, math.ceil(self.n / bs))
        whole = int(math.floor(epochs + 1e-9))
        part = int(round((epochs - whole) * nb))
        if part >= nb:
            whole, part = whole + 1, 0
        while (self.epoch, self.batch) < (whole, part):
            t0 = time.perf_counter()
            self.model.train()
            if self.batch == 0:
                self.perm = torch.randperm(self.n, generator=self.gen)
                self.loss_sum, self.loss_n = 0.0, 0
            perm = self.perm.to(self.dev)
            stop = nb if self.epoch < whole else part
            for b in range(self.batch, stop):
                if deadline is not None and time.time() >= deadline:
                    raise BudgetExhausted(self.epoch, list(self.history))
                idx = perm[b * bs:(b + 1) * bs]
                if len(idx) < 2 and self.n > 1:  # BatchNorm cannot train on one sample
                    continue
                out = self.model(to_layout(x_train[idx], self.last))
                loss = F.cross_entropy(_logits(out), y_train[idx], label_smoothing=self.cfg.label_smoothing)
                if isinstance(out, (tuple, list)) and len(out) > 1 and out[1] is not None:
                    loss = loss + 0.4 * F.cross_entropy(out[1], y_train[idx], label_smoothing=self.cfg.label_smoothing)
                optimizer_step(loss, self.opt, self.sched, self.params, self.cfg.grad_clip, self.epoch)
                self.loss_sum += float(loss.detach()) * len(idx)
                self.loss_n += len(idx)
            self.batch = stop
            if self.batch >= nb:
                self.epoch, self.batch = self.epoch + 1, 0
            self.train_loss = self.loss_sum / max(1, self.loss_n)
            rec = {"epoch": self.epoch if self.batch == 0 else float(epochs), "train_loss": self.train_loss}
            if validate or on_epoch is not None:
                rec["val_accuracy"], rec["val_loss"] = accuracy_and_loss(self.model, self.data.x_val,
                                                                         self.data.y_val, device=self.dev)
                self._val = (self.epoch, self.batch, rec["val_accuracy"], rec["val_loss"])
            self.seconds += time.perf_counter() - t0
            rec["seconds"] = self.seconds
            self.history.append(rec)
            if on_epoch is not None:
                on_epoch(rec)

    def result(self, test: bool = True) -> TrainResult:
        """Val accuracy and loss where training stopped (reused when just measured) and, with ``test``, test
        accuracy (reporting only: a trial paused at a rung below the top skips it)."""
        if self._val is not None and self._val[:2] == (self.epoch, self.batch):  # measured where it stopped
            val, val_loss = self._val[2:]
        else:
            val, val_loss = accuracy_and_loss(self.model, self.data.x_val, self.data.y_val, device=self.dev)
        test_acc = accuracy(self.model, self.data.x_test, self.data.y_test, device=self.dev) if test else None
        return TrainResult(val, test_acc, self.train_loss, self.seconds, self.epoch, self.history, val_loss)

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                "scheduler": self.sched.state_dict(), "generator": self.gen.get_state(),
                "rng": torch.get_rng_state(), "epoch": self.epoch, "seconds": self.seconds,
                "train_loss": self.train_loss, "history": [dict(h) for h in self.history],
                "batch": self.batch, "perm": self.perm, "loss_sum": self.loss_sum, "loss_n": self.loss_n}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        self.gen.set_state(state["generator"])
        torch.set_rng_state(state["rng"])
        self.epoch, self.seconds = int(state["epoch"]), float(state["seconds"])
        self.train_loss = float(state["train_loss"])
        self.history = [dict(h) for h in state["history"]]
        self.batch = int(state.get("batch", 0))  # (checkpoints written before fractions of an epoch: 0)
        self.perm = state.get("perm", torch.empty(0, dtype=torch.long))
        self.loss_sum, self.loss_n = float(state.get("loss_sum", 0.0)), int(state.get("loss_n", 0))
        self._val = None  # measured on the model before the load


def train_model(model: nn.Module, data: Dataset, cfg: TrainConfig, seed: int = 0, device: str | None = None,
                on_epoch: Callable[[dict[str, float]], None] | None = None,
                deadline: float | None = None) -> TrainResult:
    """Train on ``data``'s training split; report val and test accuracy (percent).

    Deterministic on CPU for a given seed: batch order comes from a seeded ``torch.Generator``.
    Raises TrainingDiverged when the loss is not finite, BudgetExhausted when ``deadline`` passes.
    """
    trainer = Trainer(model, data, cfg, seed=seed, device=device)
    trainer.train_until(cfg.epochs, deadline=deadline, on_epoch=on_epoch)
    return trainer.result()


@torch.no_grad()
def accuracy_and_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512,
                      device: torch.device | None = None) -> tuple[float, float]:
    """Top-1 accuracy (percent) and mean cross-entropy; the loss breaks ties when accuracy saturates."""
    if len(y) == 0:
        return float("nan"), float("nan")
    device = device or next(model.parameters(), torch.empty(0)).device
    was_training = model.training
    model.eval()
    correct, loss = 0, 0.0
    for i in range(0, len(y), batch_size):
        out = _logits(model(x[i:i + batch_size].to(device))).cpu()
        yb = y[i:i + batch_size]
        correct += int((out.argmax(1) == yb).sum())
        loss += float(F.cross_entropy(out, yb, reduction="sum"))
    model.train(was_training)
    return 100.0 * correct / y.numel(), loss / y.numel()


def count_params(model: nn.Module, exclude: str | None = None) -> int:
    """Number of parameters (optionally excluding those whose name contains ``exclude``, e.g. 'auxiliary')."""
    return sum(p.numel() for n, p in model.named_parameters() if exclude is None or exclude not in n)
