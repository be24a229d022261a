"""``archsearch search``: a black-box, scheduled or one-shot search, with a progress bar (``oneshot`` runs the
one-shot kind)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
    TimeRemainingColumn

from ..run_config import DEFAULTS, RunConfig
from ..strategies.catalog import BLACK_BOX, ONE_SHOT, strategy_names
from . import _common
from ._common import err, parse_settings, print_best

_KINDS = strategy_names()
_STRATEGY_HELP = (f"Search strategy (default: {DEFAULTS['strategy']}, best measured); black-box: "
                  f"{', '.join(_KINDS[BLACK_BOX])}; one-shot (supernet): {', '.join(_KINDS[ONE_SHOT])}. What each "
                  "searches by and its --strategy-opt options: archsearch strategies [NAME].")


def search(
    space: str = typer.Option(DEFAULTS["space"], help="Search space: macro, cell, nb201, or a registered one."),
    strategy: str = typer.Option(DEFAULTS["strategy"], help=_STRATEGY_HELP),
    trials: Optional[int] = typer.Option(None, help=f"Trial budget (default {DEFAULTS['trials']})."),
    seconds: Optional[float] = typer.Option(None, help=f"Wall-clock budget (default {DEFAULTS['seconds']:.0f})."),
    epochs: int = typer.Option(DEFAULTS["epochs"], help="Training epochs per trial (partial training); for one-shot "
                               "strategies: supernet search epochs."),
    train_epochs: Optional[int] = typer.Option(None, "--train-epochs", help="One-shot strategies: epochs to train "
                                               "the derived architecture from scratch (default 10)."),
    seed: int = typer.Option(0, help="Seed of the whole search (reproducible on the same CPU)."),
    data: Optional[str] = typer.Option(None, help="Dataset: 'digits' (default, embedded), cifar10, cifar100, "
                                       "mnist, fashion-mnist (local copies under $ARCHSEARCH_DATA), a data folder "
                                       "(CIFAR batches, MNIST IDX, one sub-folder per class) or a .npz file."),
    evaluator: str = typer.Option("train", help="Performance estimator: train, tabular (nb201 only), or "
                                  "weight-sharing (a SPOS supernet trained for --epochs ranks architectures)."),
    table: Optional[Path] = typer.Option(None, help="Benchmark table CSV for the tabular evaluator."),
    metrics_table: Optional[List[Path]] = typer.Option(None, "--metrics-table", help="Tabular: further metric "
                                                       "table(s) joined on arch [default: NB201 latencies]."),
    hardware: Optional[str] = typer.Option(None, "--hardware", help="Tabular: the device whose measured latency "
                                           "is latency_ms (pixel3, raspi4, fpga, eyeriss, xeon_gold_6226, ...)."),
    objective: Optional[str] = typer.Option(None, help="Metric to maximise (default val_accuracy), min:NAME, "
                                            "mnasnet:TARGET_MS[,hard], or pareto[:M1,min:M2] (multi-objective)."),
    constraint: Optional[List[str]] = typer.Option(None, "--constraint", help="Hard constraint, repeatable: "
                                                   "latency_ms<=5, params<=1.5M, flops<=300M (violators: infeasible)."),
    reference_point: Optional[str] = typer.Option(None, "--reference-point", help="Multi-objective: the "
                                                  "hypervolume's reference point, one value per metric in its own "
                                                  "units (e.g. 70,20 for val_accuracy, latency_ms); bo-ehvi aims at "
                                                  "the front above it."),
    latency_device: Optional[str] = typer.Option(None, "--latency-device", help="Measure latency_ms after training "
                                                 "on this device (default cpu when the objective needs it)."),
    latency_threads: int = typer.Option(1, "--latency-threads", help="CPU threads while measuring latency."),
    latency_clock: str = typer.Option("wall", "--latency-clock", help="wall, or cpu: the measuring thread's CPU "
                                      "time (1 thread; steadier on a busy machine)."),
    latency_table: Optional[Path] = typer.Option(None, "--latency-table", help="Per-op latency table (archsearch "
                                                 "profile): adds predicted_latency_ms."),
    out: Optional[Path] = typer.Option(None, help="Run directory (default runs/<time>-<space>-<strategy>)."),
    device: str = typer.Option("auto", help="Training device: auto, cpu, cuda, cuda:1 ..."),
    resume: Optional[Path] = typer.Option(None, help="Continue an interrupted run to its original budget."),
    space_opt: Optional[List[str]] = typer.Option(None, "--space-opt", help="Space setting KEY=VALUE (repeatable)."),
    strategy_opt: Optional[List[str]] = typer.Option(None, "--strategy-opt", help="Strategy option KEY=VALUE."),
    executor: str = typer.Option("auto", help="Where trials run: inline, process (local pool), ray, or auto: "
                                 "one 1-thread worker process per core for trials trained on the CPU, else "
                                 "inline."),
    workers: Optional[int] = typer.Option(None, help="Parallel workers (default: one per core, or per GPU)."),
    threads: Optional[int] = typer.Option(None, help="CPU threads per worker (default: 1 in the default pool; "
                                          "else the cores shared out among the workers)."),
    address: Optional[str] = typer.Option(None, help="Ray cluster to join: auto or HOST:PORT (default: local)."),
    retries: int = typer.Option(0, help="Run a trial again this many times when its worker dies."),
    trial_timeout: Optional[float] = typer.Option(None, help="Stop a trial after this many seconds (failed)."),
    scheduler: str = typer.Option("fifo", help="Multi-fidelity scheduler: fifo (every trial trains --epochs), "
                                  "asha, hyperband, sh (successive halving), bohb (Hyperband + bo), median "
                                  "(median stopping). Rungs of epochs min-epochs*eta^k up to --epochs."),
    min_epochs: Optional[float] = typer.Option(None, "--min-epochs", help="Scheduler: epochs of the first rung "
                                               "(default 1; below 1, e.g. 0.33: rungs of a fraction of an epoch, "
                                               "1/eta^k down to it)."),
    eta: int = typer.Option(3, help="Scheduler: reduction factor (the top 1/eta of a rung is promoted)."),
    reference: bool = typer.Option(True, "--reference/--no-reference", help="Also train the space's "
                                   "hand-designed reference architecture with the same evaluator, seed and "
                                   "fidelity, and compare the best found with it."),
    warm_start: bool = typer.Option(True, "--warm-start/--no-warm-start", help="Tell the strategy the reference's "
                                    "result as its first observation, a known-good start (the reference is never "
                                    "counted as found); --no-warm-start: the search starts from nothing."),
    quiet: bool = typer.Option(False, help="No progress bar."),
    dashboard: bool = typer.Option(False, "--dashboard", help="Also serve the live web dashboard (127.0.0.1:8765, "
                                   "or a free port) over the run's folder while the search runs; prints its address."),
) -> None:
    """Search a space for the best architecture on your data. One-shot strategies train one supernet for --epochs
    (--seconds: their compute budget; nasib fits its schedule to it), then train the derived architecture."""
    config = RunConfig(
        space=space, strategy=strategy, trials=trials, seconds=seconds, epochs=epochs, train_epochs=train_epochs,
        seed=seed, data=data, evaluator=evaluator, table=None if table is None else str(table),
        metrics_tables=[str(t) for t in metrics_table] if metrics_table else None, hardware=hardware,
        objective=objective, constraints=list(constraint) if constraint else None, reference_point=reference_point,
        latency_device=latency_device, latency_threads=latency_threads, latency_clock=latency_clock,
        latency_table=None if latency_table is None else str(latency_table), out=out, device=device,
        space_config=parse_settings(space_opt, "space setting"),
        strategy_options=parse_settings(strategy_opt, "strategy option"),
        executor=executor, workers=workers,
        threads=threads, address=address, retries=retries, trial_timeout=trial_timeout, scheduler=scheduler,
        min_epochs=min_epochs, eta=eta, reference=reference, warm_start=warm_start)
    if resume is not None:
        study = RunConfig.resume(resume, given=config.given(), cli=True)
    else:
        study = config.build(cli=True)
    from ..oneshot_study import OneShotStudy
    if isinstance(study, OneShotStudy):
        from .oneshot import search_oneshot
        if dashboard:  # issue 20: the dashboard beside the one-shot search, over its run's folder
            from ..dashboard.launch import beside_search
            err.print(f"dashboard: {beside_search(study.run_dir)}", markup=False, highlight=False)
        return search_oneshot(study, resumed=resume is not None, quiet=quiet)
    done0 = len([r for r in study.store.trials() if r.done])
    err.print(f"[bold]archsearch[/] {study.space.name} / {study.strategy.name} -> {study.run_dir}"
              + (f" (resuming at {done0} finished trials)" if resume else ""))
    if dashboard:  # issue 20: the dashboard beside the search (a reader: it never writes to the run)
        from ..dashboard.launch import beside_search
        err.print(f"dashboard: {beside_search(study.run_dir)}", markup=False, highlight=False)
    hint = busy_machine_hint(study.execution, study.spec.evaluator)
    if hint and not quiet:
        err.print(hint, markup=False, highlight=False)
    summary = _run_with_progress(study, done0, quiet)
    print_best(summary, study.space)


def busy_machine_hint(execution: dict, evaluator: str) -> str | None:
    """One line when trials would train on every core's threads on a machine that other work keeps busy (there,
    one thread per trial trained 2.8x faster: docs/benchmarks.md, issue 22). Only a hint: the thread count
    changes trained results, so it is never changed behind the user's back."""
    import os
    if evaluator != "train" or execution.get("threads") is not None or execution.get("name") != "inline":
        return None
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # pragma: no cover - no load average on this platform
        return None
    if cores < 2 or load < 0.75 * cores:
        return None
    return (f"note: this machine is busy (load {load:.1f} on {cores} cores); trials on {cores} threads each slow "
            f"down most beside other work: --threads 1 is usually faster here")


def _run_with_progress(study, done0: int, quiet: bool):
    b = study.budget
    total = b.trials if b.trials is not None else None
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("best {task.fields[best]}"), TimeElapsedColumn(), TextColumn("{task.fields[left]}")]
    if b.seconds is None:
        columns[-1:] = [TextColumn("ETA"), TimeRemainingColumn()]
    if study.reference and not quiet:
        err.print(f"reference (hand-designed): {study.space.format(study.space.reference())}"
                  + (" (its result is the strategy's first observation; --no-warm-start: not)"
                     if study.warm_start else ""))
    with Progress(*columns, console=err, disable=quiet, transient=False) as progress:
        task = progress.add_task("trials", total=total, completed=done0, best="-", left="")

        def on_trial(p) -> None:
            best = f"{p.best.value:.2f}" if p.best is not None else "-"
            left = "" if b.seconds is None else f"{max(0.0, b.seconds - p.elapsed):.0f}s left"
            progress.update(task, completed=p.finished, best=best, left=left)

        return study.run(on_trial=on_trial, started=_common.CLOCK_START)


def register(app: typer.Typer) -> None:
    app.command("search")(search)
