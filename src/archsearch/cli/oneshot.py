"""``archsearch search --strategy darts|darts2|gdas|proxyless|enas|spos|nasib``: one-shot searches from the
command line (the ``search`` command builds the run from its flags, :class:`~archsearch.run_config.RunConfig`,
and routes a one-shot study here for its progress display).

``--epochs`` counts supernet search epochs, ``--train-epochs`` the from-scratch training of the derived
architecture, ``--seconds`` is the search's compute budget (NASIB sizes its run to it; the others stop after the
epoch in which it runs out). The progress bar shows epochs done / planned, the supernet's validation accuracy,
elapsed time and ETA; then the derived architecture is trained and printed like any run's best.
``--workers N`` (with ``--executor process``, the default then, or ``ray``) runs the supernet search data-parallel
over N processes (see strategies/oneshot/distributed.py).
"""
from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, \
    TimeRemainingColumn

from . import _common


def search_oneshot(study, resumed: bool = False, quiet: bool = False) -> None:
    """Run the one-shot ``study`` (new, or ``resumed``) with its progress bar, then print its best."""
    from ._common import err, print_best

    done0 = study.epochs_done
    err.print(f"[bold]archsearch[/] {study.space.name} / {study.strategy_name} (one-shot) -> {study.run_dir}"
              + (f" (resuming after epoch {done0})" if resumed else ""))
    columns = [SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("supernet val {task.fields[acc]}"), TimeElapsedColumn(), TextColumn("ETA"),
               TimeRemainingColumn()]
    with Progress(*columns, console=err, disable=quiet, transient=False) as progress:
        total = study.config["budget"]["epochs"]
        task = progress.add_task("search epochs", total=total, completed=done0, acc="-")

        def on_epoch(p) -> None:
            acc = p.metrics.get("val_accuracy")  # none after an epoch the budget cut short: the last one stays
            progress.update(task, total=p.total, completed=p.epoch, **({} if acc is None else {"acc": f"{acc:.2f}%"}))

        def on_train(arch) -> None:
            progress.update(task, total=progress.tasks[task].completed)
            seconds = study.config["budget"].get("seconds")
            if seconds is not None:  # stated before it starts: the final training is not inside --seconds
                err.print(f"search done within --seconds {seconds:g}; now training the derived architecture "
                          f"for {study.spec.options.get('epochs', '?')} epochs (not counted in the budget)")
            progress.add_task("training the derived architecture", total=None, acc="-")

        summary = study.run(on_epoch=on_epoch, on_train=on_train, started=_common.CLOCK_START)
    print_best(summary, study.space)
