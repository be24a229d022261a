"""``archsearch search``: a black-box, scheduled or one-shot search, with a progress bar (``oneshot`` runs the
one-shot kind)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
    TimeRemainingColumn

from ..api import DEFAULT_STRATEGY_OPTIONS, DEFAULTS
from ..errors import UserError
from ._common import err, parse_settings, print_best, search_options


def search(
    space: str = typer.Option(DEFAULTS["space"], help="Search space: macro, cell, nb201, or a registered one."),
    strategy: str = typer.Option(DEFAULTS["strategy"], help="Search strategy (default: bo, best measured): bo, "
                                 "evolution, random, rl, local, grid, optuna-tpe, nsga2, ...; one-shot (supernet): "
                                 "darts, darts2, gdas, proxyless, enas, spos, nasib, fbnet, ..."),
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
    executor: str = typer.Option("inline", help="Where trials run: inline, process (local pool) or ray."),
    workers: Optional[int] = typer.Option(None, help="Parallel workers (default: one per core, or per GPU)."),
    threads: Optional[int] = typer.Option(None, help="CPU threads per worker (default: the cores shared out among "
                                          "the workers)."),
    address: Optional[str] = typer.Option(None, help="Ray cluster to join: auto or HOST:PORT (default: local)."),
    retries: int = typer.Option(0, help="Run a trial again this many times when its worker dies."),
    trial_timeout: Optional[float] = typer.Option(None, help="Stop a trial after this many seconds (failed)."),
    scheduler: str = typer.Option("fifo", help="Multi-fidelity scheduler: fifo (every trial trains --epochs), "
                                  "asha, hyperband, sh (successive halving), bohb (Hyperband + bo), median "
                                  "(median stopping). Rungs of epochs min-epochs*eta^k up to --epochs."),
    min_epochs: Optional[int] = typer.Option(None, "--min-epochs", help="Scheduler: epochs of the first rung "
                                             "(default 1)."),
    eta: int = typer.Option(3, help="Scheduler: reduction factor (the top 1/eta of a rung is promoted)."),
    reference: bool = typer.Option(True, "--reference/--no-reference", help="Also train the space's "
                                   "hand-designed reference architecture with the same evaluator, seed and "
                                   "fidelity, and compare the best found with it."),
    quiet: bool = typer.Option(False, help="No progress bar."),
    dashboard: bool = typer.Option(False, "--dashboard", help="Also serve the live web dashboard (127.0.0.1:8765, "
                                   "or a free port) over the run's folder while the search runs; prints its address."),
) -> None:
    """Search a space for the best architecture on your data. One-shot strategies train one supernet for --epochs
    (--seconds: their compute budget; nasib fits its schedule to it), then train the derived architecture."""
    from ..spaces import SPACES
    from ..strategies.oneshot import ONESHOT
    from ..oneshot_study import is_oneshot_run
    from ..study import Budget, Study

    if (resume is None and strategy in ONESHOT) or (resume is not None and is_oneshot_run(resume)):
        unused = {"--scheduler": scheduler != "fifo", "--min-epochs": min_epochs is not None, "--eta": eta != 3,
                  "--retries": retries != 0, "--trial-timeout": trial_timeout is not None,
                  "--reference-point": reference_point is not None, "--metrics-table": bool(metrics_table),
                  "--hardware": hardware is not None}
        _refuse_unused(unused, f"{strategy} is a one-shot strategy (it trains one supernet, not trials)")
        from .oneshot import search_oneshot
        if dashboard:  # issue 20: the dashboard beside the one-shot search, over its run's folder
            from ..dashboard.launch import beside_search
            err.print(f"dashboard: {beside_search(resume or out)}", markup=False, highlight=False)
        return search_oneshot(space=space, strategy=strategy, trials=trials, seconds=seconds, epochs=epochs,
                              train_epochs=train_epochs, seed=seed, data=data, evaluator=evaluator, table=table,
                              objective=objective, out=out, device=device, resume=resume, space_opt=space_opt,
                              strategy_opt=strategy_opt, executor=executor, workers=workers, address=address,
                              threads=threads, quiet=quiet, hardware={"constraints": constraint, "latency_device": latency_device,
                                        "latency_threads": latency_threads, "latency_table": latency_table,
                                        "latency_clock": latency_clock})
    _refuse_unused({"--train-epochs": train_epochs is not None},
                   f"{strategy} is a black-box strategy (each trial trains --epochs; one-shot strategies train "
                   "their derived architecture --train-epochs)")
    if evaluator != "tabular":
        _refuse_unused({"--metrics-table": bool(metrics_table), "--hardware": hardware is not None,
                        "--table": table is not None}, f"they are for the tabular evaluator, not {evaluator}")
    if resume is not None:
        study = Study.resume(resume)
    else:
        SPACES.get(space)
        if trials is None and seconds is None:
            trials, seconds = DEFAULTS["trials"], DEFAULTS["seconds"]
        budget = Budget(trials, seconds)
        if epochs < 1:
            raise UserError(f"--epochs must be at least 1, got {epochs}")
        objective_, hw_opts = search_options(objective, constraint, evaluator, latency_device, latency_threads,
                                             latency_table, latency_clock, hardware, metrics_table)
        ev_opts = _evaluator_options(evaluator, data, epochs, device, hw_opts, table, metrics_table, hardware)
        st_opts = _strategy_options(strategy, strategy_opt, objective_, reference_point)
        study = Study.create(space=space, strategy=strategy, evaluator=evaluator, budget=budget, seed=seed,
                             space_config=parse_settings(space_opt, "space setting"), strategy_options=st_opts,
                             evaluator_options=ev_opts, objective=objective_, run_dir=out,
                             executor=executor, workers=workers, address=address, retries=retries,
                             trial_timeout=trial_timeout, threads=threads, scheduler=scheduler,
                             min_epochs=min_epochs, eta=eta, reference=reference)
    done0 = len([r for r in study.store.trials() if r.done])
    err.print(f"[bold]archsearch[/] {study.space.name} / {study.strategy.name} -> {study.run_dir}"
              + (f" (resuming at {done0} finished trials)" if resume else ""))
    if dashboard:  # issue 20: the dashboard beside the search (a reader: it never writes to the run)
        from ..dashboard.launch import beside_search
        err.print(f"dashboard: {beside_search(study.run_dir)}", markup=False, highlight=False)
    summary = _run_with_progress(study, done0, quiet)
    print_best(summary, study.space)


def _evaluator_options(evaluator: str, data: str | None, epochs: int, device: str, hw_opts: dict[str, Any],
                       table: Path | None, metrics_table: List[Path] | None, hardware: str | None) -> dict[str, Any]:
    """The evaluator's options from the flags; a data file is read once here, so a bad one fails in one line
    before the run directory exists."""
    if data is not None and evaluator in ("train", "weight-sharing"):
        from ..datasets import load_data
        load_data(data)
        data = str(Path(data).resolve()) if Path(data).exists() else data
    if evaluator == "train":
        return {"data": data, "epochs": epochs, "device": None if device == "auto" else device, **hw_opts}
    if evaluator == "weight-sharing":  # --epochs: of the SPOS supernet that ranks the architectures
        return {"data": data, "epochs": epochs, "device": None if device == "auto" else device}
    ev_opts: dict[str, Any] = {"table": str(table)} if table else {}
    if metrics_table:
        ev_opts["metrics_tables"] = [str(Path(t).resolve()) for t in metrics_table]
    if hardware:
        ev_opts["hardware"] = hardware
    return ev_opts


def _strategy_options(strategy: str, strategy_opt: List[str] | None, objective_, reference_point: str | None
                      ) -> dict[str, Any]:
    """The strategy's options: its defaults, what a constraint-aware strategy is told of the objective (the
    constraints, a reference point), then ``--strategy-opt`` on top."""
    from ..benchmark.hardware import strategy_options
    from ..objective import reference_point as check_reference

    st_opts = {**DEFAULT_STRATEGY_OPTIONS.get(strategy, {}), **parse_settings(strategy_opt, "strategy option")}
    ref = None if reference_point is None else check_reference(objective_, reference_point)
    told = strategy_options(strategy, objective_, ref)
    if ref is not None and "ref_point" not in told:
        raise UserError(f"strategy {strategy} does not take a reference point (bo-ehvi does)")
    st_opts = {**told, **st_opts}
    if "ref_point" in st_opts:  # also when given as --strategy-opt ref_point=[...] (maximised orientation)
        st_opts["ref_point"] = check_reference(objective_, st_opts["ref_point"], oriented=True)
    return st_opts


def _refuse_unused(given: dict[str, bool], why: str) -> None:
    """A flag the chosen strategy or evaluator would not use is an error, never silently dropped."""
    flags = [name for name, is_given in given.items() if is_given]
    if flags:
        raise UserError(f"{', '.join(flags)} would be ignored: {why}")


def _run_with_progress(study, done0: int, quiet: bool):
    b = study.budget
    total = b.trials if b.trials is not None else None
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("best {task.fields[best]}"), TimeElapsedColumn(), TextColumn("{task.fields[left]}")]
    if b.seconds is None:
        columns[-1:] = [TextColumn("ETA"), TimeRemainingColumn()]
    if study.reference and not quiet:
        err.print(f"reference (hand-designed): {study.space.format(study.space.reference())}")
    with Progress(*columns, console=err, disable=quiet, transient=False) as progress:
        task = progress.add_task("trials", total=total, completed=done0, best="-", left="")

        def on_trial(p) -> None:
            best = f"{p.best.value:.2f}" if p.best is not None else "-"
            left = "" if b.seconds is None else f"{max(0.0, b.seconds - p.elapsed):.0f}s left"
            progress.update(task, completed=p.finished, best=best, left=left)

        return study.run(on_trial=on_trial)


def register(app: typer.Typer) -> None:
    app.command("search")(search)
