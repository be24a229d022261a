"""The one plain training/evaluation loop used everywhere (search trials, final training, supernet warm-up)."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from .data import Dataset


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


@dataclass
class TrainResult:
    val_accuracy: float
    test_accuracy: float
    train_loss: float
    train_seconds: float
    epochs: int
    history: list[dict[str, float]] = field(default_factory=list)


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


def train_model(model: nn.Module, data: Dataset, cfg: TrainConfig, seed: int = 0, device: str | None = None,
                on_epoch: Callable[[dict[str, float]], None] | None = None) -> TrainResult:
    """Train on ``data``'s training split; report val and test accuracy (percent).

    Deterministic on CPU for a given seed: batch order comes from a seeded ``torch.Generator``.
    Raises TrainingDiverged when the loss is not finite.
    """
    dev = pick_device(device)
    model.to(dev)
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    elif cfg.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                              nesterov=cfg.momentum > 0)
    else:
        raise ValueError(f"unknown optimizer {cfg.optimizer!r}")
    n = len(data.y_train)
    steps_per_epoch = max(1, math.ceil(n / cfg.batch_size))
    total = max(1, cfg.epochs * steps_per_epoch)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, (lambda s: 0.5 * (1 + math.cos(math.pi * s / total))) if cfg.schedule == "cosine" else (lambda s: 1.0))
    gen = torch.Generator().manual_seed(seed)
    x_train, y_train = data.x_train.to(dev), data.y_train.to(dev)
    history: list[dict[str, float]] = []
    start = time.perf_counter()
    loss_sum, loss_n = 0.0, 0
    for epoch in range(cfg.epochs):
        model.train()
        perm = torch.randperm(n, generator=gen).to(dev)
        loss_sum, loss_n = 0.0, 0
        for i in range(0, n, cfg.batch_size):
            idx = perm[i:i + cfg.batch_size]
            if len(idx) < 2 and n > 1:  # BatchNorm cannot train on one sample
                continue
            out = model(x_train[idx])
            loss = F.cross_entropy(_logits(out), y_train[idx], label_smoothing=cfg.label_smoothing)
            if isinstance(out, (tuple, list)) and len(out) > 1 and out[1] is not None:
                loss = loss + 0.4 * F.cross_entropy(out[1], y_train[idx], label_smoothing=cfg.label_smoothing)
            optimizer_step(loss, opt, sched, params, cfg.grad_clip, epoch)
            loss_sum += float(loss.detach()) * len(idx)
            loss_n += len(idx)
        rec = {"epoch": epoch + 1, "train_loss": loss_sum / max(1, loss_n)}
        if on_epoch is not None:
            rec["val_accuracy"] = accuracy(model, data.x_val, data.y_val, device=dev)
            on_epoch(rec)
        history.append(rec)
    seconds = time.perf_counter() - start
    val = accuracy(model, data.x_val, data.y_val, device=dev)
    test = accuracy(model, data.x_test, data.y_test, device=dev)
    return TrainResult(val, test, loss_sum / max(1, loss_n), seconds, cfg.epochs, history)


def count_params(model: nn.Module, exclude: str | None = None) -> int:
    """Number of parameters (optionally excluding those whose name contains ``exclude``, e.g. 'auxiliary')."""
    return sum(p.numel() for n, p in model.named_parameters() if exclude is None or exclude not in n)
