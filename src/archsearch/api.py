"""The Python API, reading like the CLI: ``archsearch.search(...)`` runs a study, ``archsearch.load(run_dir)``
opens a finished (or interrupted) run."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from .datasets import Dataset
from .errors import UserError
from .run_config import DEFAULT_STRATEGY_OPTIONS, DEFAULTS, RunConfig  # noqa: F401  (DEFAULT_*: public names)
from .safeload import safe_load
from .space import Architecture, SearchSpace
from .storage import TrialRecord
from .study import BEST_WEIGHTS, Budget, Study, StudySummary, space_of, summarize  # noqa: F401  (Budget: a public name)
from .training.final import (CHECKPOINT, RECIPE_SIZES, RESULT_JSON, ArchitectureSource, FinalResult, FinalTrainConfig,
                             StepProgress, read_config, recipe, train_final)


def search(space: str = DEFAULTS["space"], strategy: str = DEFAULTS["strategy"], *,
           trials: int | None = None, seconds: float | None = None, epochs: int = DEFAULTS["epochs"],
           data: str | None = None, seed: int = 0, evaluator: str = "train", objective: str | None = None,
           out: str | Path | None = None, space_config: dict[str, Any] | None = None,
           strategy_options: dict[str, Any] | None = None, evaluator_options: dict[str, Any] | None = None,
           train_epochs: int | None = None, workers: int | None = None, executor: str | None = None,
           address: str | None = None, threads: int | None = None, scheduler: str = "fifo",
           min_epochs: float | None = None, eta: int = 3, reference: bool = True, **more: Any) -> "Run":
    """Search ``space`` with ``strategy`` within the budget; returns the run (best, trials, model()).

    The same run as ``archsearch search`` with the same arguments (both are a :class:`RunConfig`): ``space`` is a
    registered name (register your own with ``archsearch.register_space``). Black-box strategies: ``trials``
    and/or ``seconds`` (neither: 30 trials within 165 s), each trial trained ``epochs`` epochs; ``executor``
    ('inline', 'process', 'ray'; ``address`` of a Ray cluster) with ``workers`` (default: one per core) runs
    trials in parallel; ``executor="auto"`` (the CLI's default) runs trials trained on the CPU in one 1-thread
    worker process per core (results told to the strategy in ask order: one seed, one search). The API's default
    is inline, because worker processes re-import the calling script: call with ``executor="auto"`` or
    ``"process"`` under ``if __name__ == "__main__":``. One-shot strategies (darts, gdas, ...): ``epochs``
    search epochs, then the derived architecture is trained ``train_epochs`` (default 10); ``workers`` > 1 runs
    the supernet search data-parallel. ``scheduler`` ('asha', 'hyperband', 'sh', 'bohb', 'median'; default 'fifo') trains black-box
    trials in rungs of ``min_epochs * eta**k`` epochs up to ``epochs``, promoting the best from their
    checkpoints; ``reference`` also trains the space's hand-designed reference (``Run.versus_reference()``)
    and, unless ``warm_start=False``, tells the strategy its result as a known-good first observation.
    ``more``: the other :class:`RunConfig` fields (``warm_start``, ``constraints``, ``reference_point``, ``retries``,
    ``trial_timeout``, ``table``, ``metrics_tables``, ``hardware``, ``device``, ``latency_*``). An argument the
    run would not use is a one-line :class:`UserError`, never ignored.
    """
    config = RunConfig(space=space, strategy=strategy, trials=trials, seconds=seconds, epochs=epochs, data=data,
                       seed=seed, evaluator=evaluator, objective=objective, out=out,
                       space_config=dict(space_config or {}), strategy_options=dict(strategy_options or {}),
                       evaluator_options=dict(evaluator_options or {}), train_epochs=train_epochs, workers=workers,
                       executor=executor, address=address, threads=threads, scheduler=scheduler,
                       min_epochs=min_epochs, eta=eta, reference=reference, **more)
    study = config.build()
    study.run()
    return load(study.run_dir)


def resume(run_dir: str | Path) -> "Run":
    """Continue an interrupted run (black-box or one-shot) to its budget."""
    from .oneshot_study import OneShotStudy, is_oneshot_run

    if is_oneshot_run(run_dir):
        OneShotStudy.resume(run_dir).run()
    else:
        Study.resume(run_dir).run()
    return load(run_dir)


@dataclass
class Run:
    """A run directory, opened: ``best``, ``trials`` (a pandas DataFrame), ``model()``."""

    summary: StudySummary
    space: SearchSpace

    @property
    def run_dir(self) -> Path:
        return self.summary.run_dir

    @property
    def best(self) -> TrialRecord | None:
        return self.summary.best

    @property
    def best_architecture(self) -> Architecture | None:
        return self.best.arch if self.best else None

    @property
    def trials(self):
        import pandas as pd

        rows = []
        for t in self.summary.trials:
            rows.append({"number": t.number, "status": t.status, "value": t.value, **t.metrics,
                         "fidelity": t.fidelity, "rungs": self.summary.rungs.get(t.number),
                         "seconds": t.seconds, "error": t.error, "architecture": self.space.format(t.arch)})
        return pd.DataFrame(rows).set_index("number") if rows else pd.DataFrame()

    def curves(self):
        """The learning curve of every trial: a DataFrame with one row per (trial, epoch)."""
        import pandas as pd

        rows = [{"trial": t, **row} for t, curve in self.summary.curves.items() for row in curve]
        return pd.DataFrame(rows)

    @property
    def reference(self) -> dict[str, Any] | None:
        """The space's hand-designed reference, trained by the same evaluator, seed and fidelity."""
        return self.summary.reference

    def versus_reference(self, metric: str = "val_accuracy") -> float | None:
        """Best found minus the reference, in points of ``metric`` (negative: the search did not beat it)."""
        return self.summary.versus_reference(metric)

    def model(self) -> torch.nn.Module:
        """The best architecture as a plain nn.Module, with the weights trained during the search loaded."""
        if self.best is None:
            raise ValueError(f"{self.run_dir} has no successful trial")
        from .evaluators import EvaluatorSpec

        cfg = self.summary.config
        spec = EvaluatorSpec(cfg["space"]["name"], cfg["space"]["config"], cfg["evaluator"]["name"],
                             cfg["evaluator"]["options"])
        ev = spec.build()
        shape = ev.data.shape if hasattr(ev, "data") else None
        model = self.space.build(self.best.arch, shape) if shape else self.space.build(self.best.arch)
        weights = self.run_dir / BEST_WEIGHTS
        if weights.exists():
            model.load_state_dict(safe_load(weights))
        return model.eval()


def load(run_dir: str | Path) -> Run:
    summary = summarize(run_dir)
    return Run(summary, space_of(summary))


@dataclass
class Trained:
    """A finished final training (``archsearch.train``): ``metrics`` (test accuracy, params, FLOPs, latency ...),
    ``history`` (one row per epoch), ``out`` (the directory with model.pt, metrics.csv, result.json) and
    ``model()`` (the trained nn.Module)."""

    out: Path
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    _model: torch.nn.Module

    @property
    def test_accuracy(self) -> float:
        return float(self.metrics["test_accuracy"])

    def model(self) -> torch.nn.Module:
        return self._model


def train(source: str | Path | None = None, *, data: str | None = None, out: str | Path | None = None,
          recipe: str = "quick", layers: int | None = None, channels: int | None = None,
          auxiliary: bool | None = None, space: str | None = None, space_config: dict[str, Any] | None = None,
          seed: int = 0, device: str | None = None, resume: str | Path | None = None, latency: bool = True,
          **options: Any) -> Trained:
    """Train an architecture from scratch with the final-evaluation recipe, like ``archsearch train``.

    ``source``: a run directory (its best), an architecture JSON file, a published name (``darts_v2``, ``nasnet_a``,
    ``mobilenet_v3_large`` ...) or a NAS-Bench-201 cell string. ``options``: epochs, batch_size, lr, lr_min,
    momentum, nesterov, weight_decay, schedule, augment, cutout, auxiliary_weight, drop_path, label_smoothing,
    grad_clip, train_on_val (see :class:`archsearch.training.final.FinalTrainConfig`). ``recipe="darts"`` is DARTS's
    CIFAR-10 setting (600 epochs, 20 cells x 36 channels, auxiliary tower, cutout, drop path).
    """
    if isinstance(source, Run):
        source = source.run_dir
    r = train_architecture(source, data=data, out=out, recipe_name=recipe, layers=layers, channels=channels,
                           auxiliary=auxiliary, space=space, space_config=space_config, seed=seed, device=device,
                           resume=resume, latency=latency, **options)
    return Trained(r.out, r.metrics, r.history, r.model)


# ---- training one architecture: resolve, load, train (what ``archsearch train`` and :func:`train` call) --------
def default_out_dir(source: ArchitectureSource, source_text: str, root: str | Path = "trained") -> Path:
    """A run's training goes to ``RUN_DIR/final``; anything else to ``trained/<time>-<name>``."""
    if source.origin == "run":
        return Path(source_text) / "final"
    from .storage import fresh_dir

    return fresh_dir(root, source.name.replace(".json", "")[:40])


def source_from_config(config: dict[str, Any]) -> ArchitectureSource:
    from .space import Architecture
    from .spaces import get_space

    s = config["source"]
    space = get_space(s["space"]["name"], **s["space"]["config"])
    return ArchitectureSource(space, space.validate(Architecture.from_json(s["architecture"])), s["origin"],
                              s["name"], config.get("data_spec"), dict(s["space"]["config"]))


def train_architecture(source: str | Path | None = None, *, data: str | None = None, out: str | Path | None = None,
                       recipe_name: str = "quick", layers: int | None = None, channels: int | None = None,
                       auxiliary: bool | None = None, space: str | None = None,
                       space_config: dict[str, Any] | None = None, image_size: int | None = None, seed: int = 0,
                       device: str | None = None, resume: str | Path | None = None, latency: bool = True,
                       on_start: Callable[[ArchitectureSource, Dataset, FinalTrainConfig, Path], None] | None = None,
                       on_step: Callable[[StepProgress], None] | None = None, **options: Any) -> FinalResult:
    """Resolve ``source`` (:func:`archsearch.arch_sources.resolve_source`), load ``data`` (default: the run's
    dataset, else digits), and train with ``recipe_name`` plus ``options`` (fields of :class:`FinalTrainConfig`).
    ``resume``: a training directory to continue with its stored settings (the other arguments are ignored)."""
    from .arch_sources import resolve_source
    from .datasets import load_data

    if resume is not None:
        cfg_doc = read_config(resume)
        src = source_from_config(cfg_doc)
        dataset = load_data(cfg_doc.get("data_spec"), cfg_doc.get("image_size"))
        cfg = FinalTrainConfig(**cfg_doc["train"])
        out_dir, seed, device = Path(resume), int(cfg_doc["seed"]), device or cfg_doc.get("device")
    else:
        if source is None:
            raise UserError("give an architecture to train (a run directory, a JSON file or a published name)")
        src = resolve_source(source, space=space, space_config=space_config, layers=layers, channels=channels,
                             auxiliary=auxiliary)
        size = RECIPE_SIZES.get(recipe_name, {})
        if size and src.space.name == "cell":  # a recipe's network size applies to cells (DARTS: 20 x 36 + aux)
            own = src.space.config.get("network", "darts") != "darts"  # a paper's own network keeps its size
            layers = layers if layers is not None or own else size["layers"]
            channels = channels if channels is not None or own else size["channels"]
            src = resolve_source(source, space=space, space_config=space_config, layers=layers, channels=channels,
                                 auxiliary=size["auxiliary"] if auxiliary is None else auxiliary)
        data = data if data is not None else src.data
        if data is not None and Path(str(data)).exists():
            data = str(Path(str(data)).resolve())
        dataset = load_data(data, image_size)
        cfg = recipe(recipe_name, **options)
        out_dir = Path(out) if out is not None else default_out_dir(src, str(source))
        if (out_dir / CHECKPOINT).exists() or (out_dir / RESULT_JSON).exists():
            raise UserError(f"{out_dir} already holds a training; continue it with --resume {out_dir} or choose "
                            f"another --out")
    if on_start is not None:
        on_start(src, dataset, cfg, out_dir)
    extra = {"data_spec": cfg_doc.get("data_spec") if resume is not None else data,
             "image_size": cfg_doc.get("image_size") if resume is not None else image_size}
    from .runlock import acquire
    with acquire(out_dir):  # one training per folder (a second `train --resume` of it is refused)
        return train_final(src, dataset, out_dir, cfg, seed=seed, device=device, resume=resume is not None,
                           latency=latency, on_step=on_step, extra=extra)
