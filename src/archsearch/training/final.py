"""Final training: train one architecture from scratch with the final-evaluation recipe, checkpointing every epoch.

The recipe is the one NAS papers use to evaluate a found cell (Zoph et al. CVPR 2018; Liu et al., DARTS, ICLR
2019): SGD with momentum and a cosine learning-rate schedule (Loshchilov & Hutter, ICLR 2017), weight decay,
the dataset's standard augmentation plus cutout (DeVries & Taylor, 2017), an auxiliary classifier tower whose loss
is added with a weight (Szegedy et al., CVPR 2015), drop-path whose probability grows linearly from 0 over training
(Larsson et al., ICLR 2017; NASNet's ScheduledDropPath), label smoothing (Szegedy et al., CVPR 2016) and gradient
norm clipping. ``RECIPES["darts"]`` is DARTS's CIFAR-10 setting; ``RECIPES["quick"]`` a short CPU setting.

An output directory holds ``config.json`` (what was asked), ``checkpoint.pt`` (model, optimiser, scheduler, random
generators and history after the last finished epoch, written atomically), ``metrics.csv`` (one row per epoch),
``model.pt`` (the trained ``state_dict``) and ``result.json`` (test accuracy, parameters, FLOPs, latency).
``resume=True`` continues from the checkpoint and ends exactly where an uninterrupted run ends (on CPU).
"""
from __future__ import annotations

import csv
import json
import math
import os
import time
from ..safeload import safe_load
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..datasets import Dataset
from ..datasets.augment import AUGMENTATIONS, augment_batch
from ..space import Architecture, SearchSpace
from ..errors import UserError
from .loop import accuracy, channels_last, optimizer_step, pick_device, to_layout

CONFIG_JSON, CHECKPOINT, METRICS_CSV, WEIGHTS, RESULT_JSON = (
    "config.json", "checkpoint.pt", "metrics.csv", "model.pt", "result.json")


@dataclass
class ArchitectureSource:
    """A resolved architecture: the space configured at the size to train, the architecture, and where it came
    from (``origin``: 'run', 'file', 'published', 'nb201', 'text'); ``data`` is the run's dataset, if any."""

    space: SearchSpace
    arch: Architecture
    origin: str
    name: str
    data: str | None = None
    space_config: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.space.format(self.arch)

    def to_dict(self) -> dict[str, Any]:
        return {"origin": self.origin, "name": self.name, "space": {"name": self.space.name,
                "config": self.space.config}, "architecture": self.arch.to_dict(), "text": self.text}


@dataclass
class FinalTrainConfig:
    """The final-evaluation recipe. ``augment`` None: the dataset's standard augmentation. ``drop_path``: the
    probability reached at the last epoch (linear ramp from 0). ``train_on_val`` (default): train on train +
    validation, as the final evaluations of NASNet, ENAS and DARTS train on the whole training set: the
    validation split served the search's model selection, and a final training selects nothing (it keeps the
    last epoch), so holding it out would only waste data. There is then no validation accuracy; the test split
    is never trained on either way."""

    epochs: int = 30
    batch_size: int = 64
    lr: float = 0.05
    lr_min: float = 0.0
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 3e-4
    schedule: str = "cosine"
    augment: str | None = None
    cutout: int = 0
    auxiliary_weight: float = 0.4
    drop_path: float = 0.0
    label_smoothing: float = 0.0
    grad_clip: float | None = 5.0
    train_on_val: bool = True

    def check(self) -> None:
        if self.epochs < 1 or self.batch_size < 2:
            raise UserError(f"epochs must be >= 1 and batch size >= 2, got {self.epochs} and {self.batch_size}")
        if self.lr <= 0 or self.lr_min < 0 or self.weight_decay < 0 or not 0 <= self.momentum < 1:
            raise UserError("need lr > 0, lr_min >= 0, weight decay >= 0 and 0 <= momentum < 1")
        if self.schedule not in ("cosine", "constant"):
            raise UserError(f"unknown schedule {self.schedule!r}: use cosine or constant")
        if self.augment is not None and self.augment not in AUGMENTATIONS:
            raise UserError(f"unknown augmentation {self.augment!r}; choose from: {', '.join(AUGMENTATIONS)}")
        if not 0 <= self.drop_path < 1 or not 0 <= self.label_smoothing < 1 or self.cutout < 0 \
                or self.auxiliary_weight < 0:
            raise UserError("need 0 <= drop_path < 1, 0 <= label_smoothing < 1, cutout >= 0, auxiliary weight >= 0")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise UserError(f"gradient clipping needs a positive norm, got {self.grad_clip}")


#: Named recipes. "darts": Liu et al. (ICLR 2019), Sec. 3.3 / their train.py: 600 epochs, batch 96, lr 0.025,
#: momentum 0.9 (not Nesterov), weight decay 3e-4, cutout 16, auxiliary weight 0.4, drop path 0.2, clip 5.
RECIPES: dict[str, dict[str, Any]] = {
    "quick": {},
    "darts": {"epochs": 600, "batch_size": 96, "lr": 0.025, "nesterov": False, "weight_decay": 3e-4, "cutout": 16,
              "auxiliary_weight": 0.4, "drop_path": 0.2, "grad_clip": 5.0, "train_on_val": True},
}
#: The network size each recipe trains a cell at (DARTS: 20 cells, 36 initial channels, auxiliary tower).
RECIPE_SIZES = {"darts": {"layers": 20, "channels": 36, "auxiliary": True}}


def recipe(name: str = "quick", **overrides: Any) -> FinalTrainConfig:
    if name not in RECIPES:
        raise UserError(f"unknown recipe {name!r}; choose from: {', '.join(RECIPES)}")
    known = {f.name for f in fields(FinalTrainConfig)}
    bad = [k for k in overrides if k not in known]
    if bad:
        raise UserError(f"unknown training option {bad[0]!r}; choose from: {', '.join(sorted(known))}")
    cfg = FinalTrainConfig(**{**RECIPES[name], **{k: v for k, v in overrides.items() if v is not None}})
    cfg.check()
    return cfg


@dataclass
class StepProgress:
    """Reported after every training step (for progress bars)."""

    epoch: int  # 1-based epoch in progress
    epochs: int
    step: int  # steps done in this epoch
    steps: int
    loss: float  # running mean of this epoch
    accuracy: float  # running training accuracy of this epoch (percent)
    record: dict[str, float] | None = None  # the epoch's row when it has just finished


@dataclass
class FinalResult:
    out: Path
    metrics: dict[str, Any]
    history: list[dict[str, float]]
    model: nn.Module

    @property
    def test_accuracy(self) -> float:
        return float(self.metrics["test_accuracy"])


def build_model(source: ArchitectureSource, data: Dataset, seed: int) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            return source.space.build(source.arch, data.shape)
        except (ValueError, RuntimeError) as e:
            raise UserError(f"cannot build {source.text[:60]} for {data.summary()}: {e}") from None


def train_final(source: ArchitectureSource, data: Dataset, out: str | Path, cfg: FinalTrainConfig, *,
                seed: int = 0, device: str | None = None, resume: bool = False, latency: bool = True,
                on_step: Callable[[StepProgress], None] | None = None, extra: dict[str, Any] | None = None
                ) -> FinalResult:
    """Train ``source`` on ``data`` with ``cfg`` into ``out``; ``resume`` continues from ``out``'s checkpoint."""
    cfg.check()
    out = Path(out)
    dev = pick_device(device)
    model = build_model(source, data, seed).to(dev)
    x_train, y_train = data.x_train, data.y_train
    if cfg.train_on_val:
        x_train, y_train = torch.cat([x_train, data.x_val]), torch.cat([y_train, data.y_val])
    n = len(y_train)
    steps = max(1, math.ceil(n / cfg.batch_size))
    params, opt, sched = _optimizer(model, cfg, cfg.epochs * steps)
    gen = torch.Generator().manual_seed(seed)
    history: list[dict[str, float]] = []
    start_epoch, seconds0 = 0, 0.0
    if resume and not (out / CHECKPOINT).is_file():
        # killed before its first epoch ended: nothing to continue, so it starts again from its stored settings
        resume = False
        torch.manual_seed(seed + 1)  # drop-path masks, as a fresh start
    elif resume:
        history, start_epoch, seconds0 = _restore(out, model, opt, sched, gen)
    else:
        out.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(seed + 1)  # drop-path masks
        _write_json(out / CONFIG_JSON, {"source": source.to_dict(), "data": data.summary(), "seed": seed,
                                        "device": device, "train": asdict(cfg), **(extra or {})})
    augment = data.augment if cfg.augment is None else cfg.augment
    has_drop_path = hasattr(model, "drop_path_prob")
    x_train, y_train = x_train.to(dev), y_train.to(dev)
    last = channels_last(model, x_train, dev)
    t0 = time.perf_counter() - seconds0
    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        drop = cfg.drop_path * epoch / cfg.epochs
        if has_drop_path:
            model.drop_path_prob = drop
        lr = opt.param_groups[0]["lr"]
        perm = torch.randperm(n, generator=gen).to(dev)
        loss_sum, correct, seen = _train_epoch(model, x_train, y_train, perm, cfg, augment, gen, last,
                                               (params, opt, sched), epoch, on_step)
        rec = {"epoch": epoch + 1, "lr": lr, "drop_path": drop if has_drop_path else 0.0,
               "train_loss": loss_sum / max(1, seen), "train_accuracy": 100 * correct / max(1, seen),
               "val_accuracy": None if cfg.train_on_val else accuracy(model, data.x_val, data.y_val,
                                                                               device=dev),
               "seconds": time.perf_counter() - t0}
        history.append(rec)
        _save_checkpoint(out, model, opt, sched, gen, history, epoch + 1, rec["seconds"])
        _write_csv(out / METRICS_CSV, history)
        if on_step is not None:
            on_step(StepProgress(epoch + 1, cfg.epochs, steps, steps, rec["train_loss"], rec["train_accuracy"], rec))
    if has_drop_path:
        model.drop_path_prob = 0.0
    metrics = _final_metrics(model, data, source, cfg, history, dev, latency)
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, out / WEIGHTS)
    _write_json(out / RESULT_JSON, {**metrics, "architecture": source.to_dict(), "data": data.summary(),
                                    "train": asdict(cfg), "seed": seed, "history": history})
    return FinalResult(out, metrics, history, model.eval())


def _optimizer(model: nn.Module, cfg: FinalTrainConfig, total_steps: int):
    """SGD with momentum (Nesterov if asked) and the cosine schedule from ``lr`` to ``lr_min`` over
    ``total_steps`` (Loshchilov & Hutter, ICLR 2017), stepped per batch; ``schedule="constant"`` keeps ``lr``."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                          nesterov=cfg.nesterov and cfg.momentum > 0)
    floor = cfg.lr_min / cfg.lr
    sched = torch.optim.lr_scheduler.LambdaLR(opt, (lambda s: floor + (1 - floor) * 0.5 * (
        1 + math.cos(math.pi * min(s, total_steps) / total_steps))) if cfg.schedule == "cosine" else (lambda s: 1.0))
    return params, opt, sched


def _restore(out: Path, model: nn.Module, opt, sched, gen: torch.Generator) -> tuple[list, int, float]:
    """Load the checkpoint into the model, optimiser, schedule and generators; (history, epoch, seconds)."""
    ck = _load_checkpoint(out)
    model.load_state_dict(ck["model"])
    opt.load_state_dict(ck["optimizer"])
    sched.load_state_dict(ck["scheduler"])
    gen.set_state(ck["generator"])
    torch.set_rng_state(ck["torch_rng"])
    return ck["history"], ck["epoch"], ck["seconds"]


def _train_epoch(model: nn.Module, x_train: torch.Tensor, y_train: torch.Tensor, perm: torch.Tensor,
                 cfg: FinalTrainConfig, augment: str, gen: torch.Generator, last: bool, optim: tuple, epoch: int,
                 on_step: Callable[[StepProgress], None] | None) -> tuple[float, int, int]:
    """One pass over the training split in ``perm``'s order (augmentation, cutout, the auxiliary tower's loss,
    label smoothing, clipping); returns (summed loss, correct, samples seen)."""
    params, opt, sched = optim
    steps = max(1, math.ceil(len(perm) / cfg.batch_size))
    loss_sum, correct, seen = 0.0, 0, 0
    for step, i in enumerate(range(0, len(perm), cfg.batch_size)):
        idx = perm[i:i + cfg.batch_size]
        if len(idx) < 2:  # BatchNorm cannot train on one sample
            continue
        xb, yb = x_train[idx], y_train[idx]
        if augment != "none" or cfg.cutout:
            xb = augment_batch(xb, augment, gen, cfg.cutout)
        out_ = model(to_layout(xb, last))
        logits, aux = (out_[0], out_[1]) if isinstance(out_, (tuple, list)) else (out_, None)
        loss = F.cross_entropy(logits, yb, label_smoothing=cfg.label_smoothing)
        if aux is not None and cfg.auxiliary_weight > 0:
            loss = loss + cfg.auxiliary_weight * F.cross_entropy(aux, yb, label_smoothing=cfg.label_smoothing)
        optimizer_step(loss, opt, sched, params, cfg.grad_clip, epoch)
        loss_sum += float(loss.detach()) * len(idx)
        correct += int((logits.detach().argmax(1) == yb).sum())
        seen += len(idx)
        if on_step is not None:
            on_step(StepProgress(epoch + 1, cfg.epochs, step + 1, steps, loss_sum / seen, 100 * correct / seen))
    return loss_sum, correct, seen


def _final_metrics(model: nn.Module, data: Dataset, source: ArchitectureSource, cfg: FinalTrainConfig,
                   history: list[dict[str, float]], dev: torch.device, latency: bool) -> dict[str, Any]:
    """Test accuracy, parameters (without the auxiliary tower, as papers count them, and with it), FLOPs and
    MACs of one inference, and the median CPU latency at batch 1 on one thread (with the load average)."""
    from ..hardware.cost import count_flops, measure_latency

    model.eval()
    n_all = sum(p.numel() for p in model.parameters())
    n_aux = sum(p.numel() for name, p in model.named_parameters() if name.startswith("auxiliary"))
    flops = count_flops(model, data.shape.size)
    out: dict[str, Any] = {
        "test_accuracy": accuracy(model, data.x_test, data.y_test, device=dev),
        "val_accuracy": None if cfg.train_on_val else accuracy(model, data.x_val, data.y_val, device=dev),
        "params": n_all - n_aux, "params_with_auxiliary": n_all, "flops": flops, "macs": flops // 2,
        "epochs": len(history), "train_seconds": history[-1]["seconds"] if history else 0.0,
        "text": source.text, "load1": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    if latency:
        stats = measure_latency(model, data.shape.size, device="cpu", threads=1, repeats=30)
        out.update({"latency_ms": stats.median_ms, "latency_device": "cpu", "latency_threads": 1,
                    "latency_load1": stats.load1})
    return out


# ---- files ---------------------------------------------------------------------------------------------------
def _write_json(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, default=_jsonable, allow_nan=False))
    os.replace(tmp, path)


def _jsonable(v: Any) -> Any:  # numpy / torch scalars, tuples, paths
    if isinstance(v, (set, tuple)):
        return list(v)
    if isinstance(v, Path):
        return str(v)
    return float(v)


def _write_csv(path: Path, history: list[dict[str, float]]) -> None:
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(history[0]))
        w.writeheader()
        for row in history:
            w.writerow({k: "" if v is None else v for k, v in row.items()})
    os.replace(tmp, path)


def _save_checkpoint(out: Path, model, opt, sched, gen, history, epoch: int, seconds: float) -> None:
    tmp = out / (CHECKPOINT + ".tmp")
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "generator": gen.get_state(), "torch_rng": torch.get_rng_state(), "history": history,
                "epoch": epoch, "seconds": seconds}, tmp)
    os.replace(tmp, out / CHECKPOINT)


def _load_checkpoint(out: Path) -> dict[str, Any]:
    path = out / CHECKPOINT
    if not path.is_file():
        raise UserError(f"{out} has no {CHECKPOINT} to resume from")
    try:
        return safe_load(path)
    except Exception as e:
        raise UserError(f"cannot read {path} ({type(e).__name__}: {e})") from None


def read_config(out: str | Path) -> dict[str, Any]:
    """The ``config.json`` of a training directory (to resume it with the same settings)."""
    path = Path(out) / CONFIG_JSON
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{out} is not a training directory (no {CONFIG_JSON})") from None
    except ValueError as e:
        raise UserError(f"{path}: broken JSON ({e})") from None
