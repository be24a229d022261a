"""``archsearch train``: train an architecture from scratch with the final-evaluation recipe (a run's best, an
Architecture JSON file, or a published architecture by name), checkpointing every epoch; ``--resume`` continues.

Writes to ``--out`` (default ``RUN_DIR/final`` for a run, else ``trained/<time>-<name>``): ``model.pt`` (weights),
``metrics.csv`` (one row per epoch), ``result.json`` (test accuracy, params, FLOPs, latency), ``checkpoint.pt`` and
``config.json``.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
    TimeRemainingColumn

from ..errors import UserError


def train(
    source: Optional[str] = typer.Argument(None, help="A run directory (its best), an architecture JSON file, a "
                                           "published name (darts_v1, darts_v2, nasnet_a, amoebanet_a, enas, "
                                           "mobilenet_v3_large) or a NAS-Bench-201 cell string."),
    data: Optional[str] = typer.Option(None, help="Dataset: digits, cifar10, cifar100, mnist, fashion-mnist (local "
                                       "copies under $ARCHSEARCH_DATA), a data folder or a .npz (default: the run's "
                                       "dataset, else digits)."),
    out: Optional[Path] = typer.Option(None, help="Output directory (default RUN_DIR/final or trained/<time>-<name>)."),
    recipe: str = typer.Option("quick", help="Base recipe: quick (30 epochs, CPU-sized) or darts (DARTS's CIFAR-10 "
                               "setting: 600 epochs, cutout 16, aux 0.4, drop path 0.2, 20 cells x 36 channels)."),
    epochs: Optional[int] = typer.Option(None, help="Training epochs."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Batch size."),
    lr: Optional[float] = typer.Option(None, help="Initial learning rate (SGD)."),
    lr_min: Optional[float] = typer.Option(None, "--lr-min", help="Final learning rate of the cosine schedule."),
    momentum: Optional[float] = typer.Option(None, help="SGD momentum."),
    nesterov: Optional[bool] = typer.Option(None, "--nesterov/--no-nesterov", help="Nesterov momentum."),
    weight_decay: Optional[float] = typer.Option(None, "--weight-decay", help="L2 weight decay."),
    schedule: Optional[str] = typer.Option(None, help="cosine or constant."),
    augment: Optional[str] = typer.Option(None, help="none, crop_flip, crop or flip (default: the dataset's: "
                                          "crop_flip for CIFAR and image folders, none for digits)."),
    cutout: Optional[int] = typer.Option(None, help="Cutout square side in pixels (0: off; DARTS: 16)."),
    auxiliary: Optional[bool] = typer.Option(None, "--auxiliary/--no-auxiliary", help="Auxiliary tower (cell "
                                             "networks)."),
    auxiliary_weight: Optional[float] = typer.Option(None, "--auxiliary-weight", help="Weight of the auxiliary "
                                                     "loss (DARTS: 0.4)."),
    drop_path: Optional[float] = typer.Option(None, "--drop-path", help="Drop-path probability reached at the last "
                                              "epoch, ramped linearly from 0 (cell networks; DARTS: 0.2)."),
    label_smoothing: Optional[float] = typer.Option(None, "--label-smoothing", help="Label smoothing (0: off)."),
    grad_clip: Optional[float] = typer.Option(None, "--grad-clip", help="Gradient norm clip (0: off)."),
    train_on_val: Optional[bool] = typer.Option(None, "--train-on-val/--no-train-on-val", help="Train on the "
                                                "training and validation splits, as final evaluations do (the "
                                                "default); --no-train-on-val holds validation out to watch it."),
    layers: Optional[int] = typer.Option(None, help="Cells (cell space) or cells per stage (nb201)."),
    channels: Optional[int] = typer.Option(None, help="Initial channels (cell, nb201) or stem channels."),
    space: Optional[str] = typer.Option(None, help="The space of the architecture (for a text form or a bare JSON)."),
    space_opt: Optional[List[str]] = typer.Option(None, "--space-opt", help="Space setting KEY=VALUE (repeatable)."),
    image_size: Optional[int] = typer.Option(None, "--image-size", help="Side images of an image folder are "
                                             "resized to (default 32)."),
    seed: int = typer.Option(0, help="Seed (initialisation, batch order, augmentation)."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:1 ..."),
    threads: Optional[int] = typer.Option(None, help="CPU threads for training (default: PyTorch's; on a busy "
                                          "machine 1 is often fastest)."),
    resume: Optional[Path] = typer.Option(None, help="Continue an interrupted training directory."),
    no_latency: bool = typer.Option(False, "--no-latency", help="Do not measure CPU latency at the end."),
    with_reference: bool = typer.Option(False, "--with-reference", help="A run: also train the space's "
                                        "hand-designed reference with the same recipe and seed, and compare."),
    as_json: bool = typer.Option(False, "--json", help="Print the final metrics as one JSON object."),
    quiet: bool = typer.Option(False, help="No progress bar."),
) -> None:
    """Train an architecture from scratch (final evaluation) and report test accuracy, params, FLOPs, latency."""
    from ..api import train_architecture
    from ._common import err, parse_settings

    if source is None and resume is None:
        raise UserError("give an architecture to train (RUN_DIR, a JSON file or a published name) or --resume DIR")
    options = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "lr_min": lr_min, "momentum": momentum,
               "nesterov": nesterov, "weight_decay": weight_decay, "schedule": schedule, "augment": augment,
               "cutout": cutout, "auxiliary_weight": auxiliary_weight, "drop_path": drop_path,
               "label_smoothing": label_smoothing, "train_on_val": train_on_val}
    if grad_clip is not None:
        options["grad_clip"] = grad_clip if grad_clip > 0 else None
    options = {k: v for k, v in options.items() if v is not None}
    if threads is not None:
        if threads < 1:
            raise UserError(f"--threads must be at least 1, got {threads}")
        import torch
        torch.set_num_threads(threads)
    if resume is not None and (source is not None or options):
        raise UserError("--resume continues with the stored settings; give no architecture or training options")
    reference = _reference_source(source) if with_reference else None
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("loss {task.fields[loss]}  train {task.fields[acc]}  val {task.fields[val]}"),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]
    with Progress(*columns, console=err, disable=quiet or as_json, transient=False) as progress:
        tasks: dict[str, int] = {}

        def on_start(src, dataset, cfg, out_dir) -> None:
            err.print(f"[bold]archsearch train[/] {src.space.name}: {src.text[:100]} on {dataset.summary()} -> "
                      f"{out_dir}" + (" (resuming)" if resume is not None else ""), highlight=False)
            if cfg.drop_path > 0 and src.space.name != "cell":
                err.print(f"note: --drop-path applies to cell networks; the {src.space.name} network has no "
                          f"drop-path branches, so it trains without", highlight=False)
            tasks["epochs"] = progress.add_task("epochs", total=cfg.epochs, loss="-", acc="-", val="-")
            tasks["steps"] = progress.add_task("steps", total=None, loss="-", acc="-", val="-")

        def on_step(p) -> None:
            if not tasks:
                return
            loss, acc = f"{p.loss:.3f}", f"{p.accuracy:.2f}%"
            progress.update(tasks["steps"], total=p.steps, completed=p.step, loss=loss, acc=acc)
            if p.record is not None:
                v = p.record.get("val_accuracy")
                progress.update(tasks["epochs"], completed=p.epoch, loss=loss, acc=acc,
                                val="-" if v is None else f"{v:.2f}%")

        kwargs = dict(recipe_name=recipe, layers=layers, channels=channels, auxiliary=auxiliary, space=space,
                      space_config=parse_settings(space_opt, "space setting"), image_size=image_size, seed=seed,
                      device=None if device == "auto" else device, latency=not no_latency, on_start=on_start,
                      on_step=on_step, **options)
        result = train_architecture(source, data=data, out=out, resume=resume, **kwargs)
        ref_result = None
        if reference is not None:
            ref_file, ref_data = reference
            tasks.clear()
            ref_out = Path(str(result.out) + "-reference")
            ref_result = train_architecture(str(ref_file), data=data or ref_data, out=ref_out, **kwargs)
    _print_result(result, ref_result, as_json)


def _print_result(result, ref_result, as_json: bool) -> None:
    """The final metrics (and the reference's, when it was trained beside): a line, or one JSON object."""
    from ._common import console

    m = result.metrics
    if ref_result is not None:
        m = {**m, "reference_test_accuracy": ref_result.metrics["test_accuracy"],
             "vs_reference_test": m["test_accuracy"] - ref_result.metrics["test_accuracy"]}
    if as_json:
        sys.stdout.write(json.dumps({"out": str(result.out), **m}, default=float) + "\n")
        return
    val = "-" if m.get("val_accuracy") is None else f"{m['val_accuracy']:.2f}%"
    lat = f"  latency {m['latency_ms']:.2f} ms (cpu, 1 thread, batch 1)" if m.get("latency_ms") is not None else ""
    console.print(f"test accuracy {m['test_accuracy']:.2f}%  val {val}  params {m['params']:,}  "
                  f"FLOPs {m['flops']:,}{lat}  {m['train_seconds']:.0f}s -> {result.out}", highlight=False)
    if ref_result is not None:
        d = m["vs_reference_test"]
        console.print(f"retrained best vs reference: {d:+.2f} points test (reference {m['reference_test_accuracy']:.2f}%"
                      f" -> {ref_result.out})" + ("; the search did not beat the hand-designed reference"
                                                  if d <= 0 else ""), highlight=False)


def _reference_source(source: str | None) -> tuple[Path, str | None]:
    """The run's hand-designed reference as an architecture file (written into the run), and the run's data."""
    from ..arch_sources import resolve_source
    from ..storage import RunStore

    if source is None or not RunStore.is_run(source):
        raise UserError("--with-reference needs a run directory (its reference is stored with the run)")
    store = RunStore(source)
    try:
        ref, cfg = store.get_meta("reference"), store.get_meta("config", {})
    finally:
        store.close()
    if not ref or not ref.get("architecture"):
        raise UserError(f"{source} has no hand-designed reference (searched with --no-reference, or its space "
                        "names none)")
    path = Path(source) / "reference.json"
    path.write_text(json.dumps({"architecture": ref["architecture"], "space": cfg.get("space", {})}, indent=2))
    return path, resolve_source(source).data


def register(app: typer.Typer) -> None:
    """Add the ``train`` command to the main typer app."""
    app.command("train")(train)
