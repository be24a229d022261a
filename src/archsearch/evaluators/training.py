"""Training evaluator: build the architecture, train it for a number of epochs (partial training = low
fidelity), report val accuracy (the search signal), test accuracy (reporting only), parameters and seconds."""
from __future__ import annotations

import math
import os
import traceback
from pathlib import Path
from dataclasses import asdict
from typing import Any

import torch

from ..datasets import Dataset, cached_data
from ..hardware.probe import HardwareProbe
from ..result import Result
from ..safeload import safe_load
from ..space import Architecture, SearchSpace
from ..training.loop import BudgetExhausted, TrainConfig, Trainer, TrainingDiverged, count_params
from .base import register_evaluator



@register_evaluator("train")
class TrainingEvaluator:
    """Train each candidate from scratch (seeded; reproducible on CPU). ``fidelity`` overrides the epochs."""

    def __init__(self, space: SearchSpace, data: str | None = None, epochs: int = 10, batch_size: int = 64,
                 lr: float = 0.05, weight_decay: float = 3e-4, optimizer: str = "sgd", device: str | None = None,
                 keep_weights: bool = True, latency_device: str | None = None, latency_threads: int | None = 1,
                 latency_batch: int = 1, latency_repeats: int = 30, latency_table: str | None = None,
                 latency_clock: str = "wall"):
        if epochs < 1:
            raise ValueError("epochs must be at least 1")
        self.space = space
        self.data_spec = data
        self.train_cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                                     optimizer=optimizer)
        self.device = device
        self.keep_weights = keep_weights
        # params/FLOPs for every trial; latency measured after training when latency_device is set (issue 6)
        self.hardware = HardwareProbe(space, latency_device, latency_threads, latency_batch, latency_repeats,
                                      latency_table, latency_clock)

    @property
    def data(self) -> Dataset:
        return cached_data(self.data_spec)

    def config(self) -> dict[str, Any]:
        c = asdict(self.train_cfg)
        return {"data": self.data_spec, "epochs": c["epochs"], "batch_size": c["batch_size"], "lr": c["lr"],
                "weight_decay": c["weight_decay"], "optimizer": c["optimizer"], "device": self.device,
                **self.hardware.config()}

    def build(self, arch: Architecture, seed: int = 0) -> torch.nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.space.build(arch, self.data.shape)

    #: the study may pass ``checkpoint``, ``deadline`` and ``horizon`` (multi-fidelity scheduling, budgets)
    resumable = True
    #: what every result may carry (perplexity on text corpora; latency when measured), and the fidelity
    reports = frozenset({"val_accuracy", "test_accuracy", "params", "flops", "macs", "latency_ms",
                         "predicted_latency_ms", "train_seconds", "train_loss", "val_loss", "epochs", "val_perplexity",
                         "test_perplexity"})
    fidelities = ("epochs",)

    def static_metrics(self, arch: Architecture, seed: int = 0) -> dict[str, float]:
        """params, FLOPs (and a latency table's prediction) without training: constraints are checked at ask
        time on these."""
        return {"params": float(count_params(m := self.build(arch, seed))), **self.hardware.static(m, self.data.shape)}

    def evaluate(self, arch: Architecture, seed: int = 0, fidelity: float | None = None,
                 checkpoint: str | None = None, deadline: float | None = None,
                 horizon: float | None = None) -> Result:
        """Train ``arch`` to ``fidelity`` epochs (default: the configured epochs). ``checkpoint``: a file to
        continue from when it exists and to save after every epoch (a promoted trial is never retrained);
        ``deadline``: ``time.time()`` at which training stops (the run's budget; the result is ``stopped`` with
        its partial curve); ``horizon``: the epochs the LR schedule spans (the scheduler's largest rung)."""
        cfg = self.train_cfg
        if fidelity is not None:
            cfg = TrainConfig(**{**asdict(cfg), "epochs": max(1, math.ceil(float(fidelity) - 1e-9))})
        horizon_epochs = None if horizon is None else max(cfg.epochs, int(round(horizon)))
        trainer = None
        try:
            model = self.build(arch, seed)
            params = count_params(model)
            state = safe_load(checkpoint) if checkpoint is not None and Path(checkpoint).exists() else None
            # FLOPs are counted once a trial (a forward pass with hooks, ~0.1 s): a promotion reads them back
            hardware = dict(state.pop("static")) if state is not None and "static" in state else \
                self.hardware.static(model, self.data.shape)
            static = dict(hardware)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                trainer = Trainer(model, self.data, cfg, seed=seed, device=self.device, horizon=horizon_epochs)
                if state is not None:
                    trainer.load_state_dict(state)
                save = None if checkpoint is None else \
                    (lambda _rec: _save({**trainer.state_dict(), "static": static}, checkpoint))
                trainer.train_until(cfg.epochs if fidelity is None else float(fidelity), deadline=deadline,
                                    validate=checkpoint is not None, on_epoch=save)
                # test accuracy is for reporting: measured at the top rung, not at a rung a trial may stop at
                # (0.17 s a job on a 28x28 dataset, a sixth of a 1/3-epoch first rung)
                tr = trainer.result(test=horizon is None or fidelity is None or float(fidelity) >= horizon - 1e-9)
            hardware.update(self.hardware.latency(model, self.data.shape))
        except BudgetExhausted as e:
            return Result(metrics={"params": float(params), "epochs": float(e.epochs_done), **hardware},
                          status="stopped", error=str(e), curve=e.history)
        except TrainingDiverged as e:
            return Result.failure(f"training diverged: {e}")
        except Exception as e:  # a trial that crashes is a failed trial, never a lost run
            tb = traceback.extract_tb(e.__traceback__)
            where = f" at {tb[-1].filename.rsplit('/', 1)[-1]}:{tb[-1].lineno}" if tb else ""
            return Result.failure(f"{type(e).__name__}: {e}{where}")
        metrics = {"val_accuracy": tr.val_accuracy, "params": float(params), "train_seconds": tr.train_seconds,
                   "epochs": float(cfg.epochs if fidelity is None else fidelity), "train_loss": tr.train_loss,
                   "val_loss": tr.val_loss, **hardware}
        if tr.test_accuracy is not None:
            metrics["test_accuracy"] = tr.test_accuracy
        from ..datasets.text import TextDataset, language_model_metrics
        if isinstance(self.data, TextDataset):  # language models: val/test perplexity (lower is better)
            metrics.update(language_model_metrics(model, self.data))
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()} if self.keep_weights else None
        return Result(metrics=metrics, state_dict=state, cost_seconds=tr.train_seconds, curve=tr.history)


def _save(state: dict, path: str) -> None:
    """Write a checkpoint atomically (a kill mid-write leaves the previous one)."""
    tmp = f"{path}.tmp"
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, tmp)
    os.replace(tmp, path)
