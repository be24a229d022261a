"""``archsearch search --strategy darts|darts2|gdas|proxyless|enas|spos|nasib``: one-shot searches from the
command line (the ``search`` command routes here; this module keeps cli/search.py thin).

``--epochs`` counts supernet search epochs, ``--train-epochs`` the from-scratch training of the derived
architecture, ``--seconds`` is the search's compute budget (NASIB sizes its run to it; the others stop after the
epoch in which it runs out). The progress bar shows epochs done / planned, the supernet's validation accuracy,
elapsed time and ETA; then the derived architecture is trained and printed like any run's best.
``--workers N`` (with ``--executor process``, the default then, or ``ray``) runs the supernet search data-parallel
over N processes (see strategies/oneshot/distributed.py).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, \
    TimeRemainingColumn

from ..errors import UserError
from ..oneshot_study import DEFAULT_TRAIN_EPOCHS


def search_oneshot(*, space: str, strategy: str, trials: int | None, seconds: float | None, epochs: int,
                   train_epochs: int | None, seed: int, data: str | None, evaluator: str, table: Path | None,
                   objective: str | None, out: Path | None, device: str, resume: Path | None,
                   space_opt: list[str] | None, strategy_opt: list[str] | None, executor: str = "inline",
                   workers: int | None = None, address: str | None = None, quiet: bool = False,
                   hardware: dict[str, Any] | None = None, threads: int | None = None) -> None:
    """``hardware``: the search command's --constraint and --latency-* settings (objective metrics the derived
    architecture's evaluation must report, as for any run)."""
    from ..oneshot_study import OneShotStudy
    from ._common import err, print_best

    if resume is not None:
        study = OneShotStudy.resume(resume)
    else:
        study = _new_study(space=space, strategy=strategy, trials=trials, seconds=seconds, epochs=epochs,
                           train_epochs=train_epochs, seed=seed, data=data, evaluator=evaluator, table=table,
                           objective=objective, out=out, device=device, space_opt=space_opt,
                           strategy_opt=strategy_opt, executor=executor, workers=workers, address=address,
                           hardware=hardware, threads=threads)
    done0 = study.epochs_done
    err.print(f"[bold]archsearch[/] {study.space.name} / {study.strategy_name} (one-shot) -> {study.run_dir}"
              + (f" (resuming after epoch {done0})" if resume is not None else ""))
    columns = [SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("supernet val {task.fields[acc]}"), TimeElapsedColumn(), TextColumn("ETA"),
               TimeRemainingColumn()]
    with Progress(*columns, console=err, disable=quiet, transient=False) as progress:
        total = study.config["budget"]["epochs"]
        task = progress.add_task("search epochs", total=total, completed=done0, acc="-")

        def on_epoch(p) -> None:
            acc = p.metrics.get("val_accuracy")
            progress.update(task, total=p.total, completed=p.epoch, acc="-" if acc is None else f"{acc:.2f}%")

        def on_train(arch) -> None:
            progress.update(task, total=progress.tasks[task].completed)
            seconds = study.config["budget"].get("seconds")
            if seconds is not None:  # stated before it starts: the final training is not inside --seconds
                err.print(f"search done within --seconds {seconds:g}; now training the derived architecture "
                          f"for {study.spec.options.get('epochs', '?')} epochs (not counted in the budget)")
            progress.add_task("training the derived architecture", total=None, acc="-")

        summary = study.run(on_epoch=on_epoch, on_train=on_train)
    print_best(summary, study.space)


def _new_study(*, space: str, strategy: str, trials: int | None, seconds: float | None, epochs: int,
               train_epochs: int | None, seed: int, data: str | None, evaluator: str, table: Path | None,
               objective: str | None, out: Path | None, device: str, space_opt: list[str] | None,
               strategy_opt: list[str] | None, executor: str, workers: int | None, address: str | None,
               hardware: dict[str, Any] | None, threads: int | None):
    """A new one-shot study from the flags: the budget checked, the data read once (a bad file fails before the
    run directory exists), the derived architecture's evaluator options."""
    from ..oneshot_study import OneShotStudy
    from ._common import parse_settings, search_options

    if trials is not None:
        raise UserError("--trials is for black-box strategies; a one-shot search trains one supernet: give "
                        "--epochs (search) and --train-epochs (the derived architecture)")
    workers = 1 if workers is None else workers
    if workers > 1 and executor == "inline":
        executor = "process"  # --workers N alone: N local processes
    train_epochs = DEFAULT_TRAIN_EPOCHS if train_epochs is None else train_epochs
    if epochs < 1 or train_epochs < 1:
        raise UserError(f"--epochs and --train-epochs must be at least 1, got {epochs} and {train_epochs}")
    if data is not None:
        from ..datasets import load_data
        load_data(data)  # a bad file fails here, in one line, before the run directory exists
        data = str(Path(data).resolve()) if Path(data).exists() else data
    dev = None if device == "auto" else device
    hw = {"constraints": None, "latency_device": None, "latency_threads": 1, "latency_table": None,
          "latency_clock": "wall", **(hardware or {})}
    objective_, hw_opts = search_options(objective, hw["constraints"], evaluator, hw["latency_device"],
                                         hw["latency_threads"], hw["latency_table"], hw["latency_clock"])
    if evaluator == "train":
        ev_opts: dict[str, Any] = {"data": data, "epochs": train_epochs, "device": dev, **hw_opts}
    elif evaluator == "tabular":
        ev_opts = {"table": str(table)} if table else {}
    else:
        ev_opts = {"data": data} if data is not None else {}
    study = OneShotStudy.create(space=space, strategy=strategy, epochs=epochs, seed=seed,
                                space_config=parse_settings(space_opt, "space setting"),
                                strategy_options=parse_settings(strategy_opt, "strategy option"),
                                evaluator=evaluator, evaluator_options=ev_opts,
                                objective=objective_, run_dir=out, seconds=seconds, data=data,
                                device=dev, workers=workers, executor=executor, address=address,
                                threads=threads)
    if threads is not None and workers == 1:  # (more workers: each process gets ``threads``)
        import torch
        torch.set_num_threads(threads)
    return study
