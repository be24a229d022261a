"""The ``archsearch`` command line: thin, it parses options and calls the API.

User mistakes print one line ``error: ...`` on stderr and exit with code 2, never a traceback.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, List, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
    TimeRemainingColumn
from rich.table import Table

from .api import DEFAULT_STRATEGY_OPTIONS, DEFAULTS
from .errors import UserError
from .registry import UnknownNameError
from .space import ArchitectureError

app = typer.Typer(add_completion=False, no_args_is_help=False, pretty_exceptions_enable=False,
                  help="archsearch: neural architecture search on PyTorch.")
console = Console()
err = Console(stderr=True)



def parse_settings(items: List[str] | None, what: str) -> dict[str, Any]:
    """KEY=VALUE pairs; values are read as JSON when they parse (numbers, lists, true/false), else strings."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"bad {what} {item!r}: use KEY=VALUE")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


@app.command()
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
    from .objective import parse_objective
    from .spaces import SPACES
    from .strategies.oneshot import ONESHOT
    from .strategies.oneshot.runner import is_oneshot_run
    from .study import Budget, Study

    if (resume is None and strategy in ONESHOT) or (resume is not None and is_oneshot_run(resume)):
        unused = {"--scheduler": scheduler != "fifo", "--min-epochs": min_epochs is not None, "--eta": eta != 3,
                  "--retries": retries != 0, "--trial-timeout": trial_timeout is not None,
                  "--reference-point": reference_point is not None, "--metrics-table": bool(metrics_table),
                  "--hardware": hardware is not None}
        _refuse_unused(unused, f"{strategy} is a one-shot strategy (it trains one supernet, not trials)")
        from .cli_oneshot import search_oneshot
        if dashboard:  # issue 20: the dashboard beside the one-shot search, over its run's folder
            from .cli_dashboard import beside_search
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
        from .cli_hardware import search_options
        objective_, hw_opts = search_options(objective, constraint, evaluator, latency_device, latency_threads,
                                             latency_table, latency_clock, hardware, metrics_table)
        if data is not None and evaluator in ("train", "weight-sharing"):
            from .data import load_data
            load_data(data)  # a bad file fails here, in one line, before the run directory exists
            data = str(Path(data).resolve()) if Path(data).exists() else data
        if evaluator == "train":
            ev_opts: dict[str, Any] = {"data": data, "epochs": epochs, "device": None if device == "auto" else device,
                                       **hw_opts}
        elif evaluator == "weight-sharing":  # --epochs: of the SPOS supernet that ranks the architectures
            ev_opts = {"data": data, "epochs": epochs, "device": None if device == "auto" else device}
        else:
            ev_opts = {"table": str(table)} if table else {}
            if metrics_table:
                ev_opts["metrics_tables"] = [str(Path(t).resolve()) for t in metrics_table]
            if hardware:
                ev_opts["hardware"] = hardware
        st_opts = {**DEFAULT_STRATEGY_OPTIONS.get(strategy, {}), **parse_settings(strategy_opt, "strategy option")}
        from .benchmark_hw import strategy_options  # constraint-aware strategies are told the constraints
        from .objective import reference_point as check_reference
        ref = None if reference_point is None else check_reference(objective_, reference_point)
        told = strategy_options(strategy, objective_, ref)
        if ref is not None and "ref_point" not in told:
            raise UserError(f"strategy {strategy} does not take a reference point (bo-ehvi does)")
        st_opts = {**told, **st_opts}
        if "ref_point" in st_opts:  # also when given as --strategy-opt ref_point=[...] (maximised orientation)
            st_opts["ref_point"] = check_reference(objective_, st_opts["ref_point"], oriented=True)
        study = Study.create(space=space, strategy=strategy, evaluator=evaluator, budget=budget, seed=seed,
                             space_config=parse_settings(space_opt, "space setting"), strategy_options=st_opts,
                             evaluator_options=ev_opts, objective=objective_, run_dir=out,
                             executor=executor, workers=workers, address=address, retries=retries,
                             trial_timeout=trial_timeout, threads=threads, scheduler=scheduler,
                             min_epochs=min_epochs, eta=eta, reference=reference)
    done0 = len([r for r in study.store.trials() if r.done])
    b = study.budget
    err.print(f"[bold]archsearch[/] {study.space.name} / {study.strategy.name} -> {study.run_dir}"
              + (f" (resuming at {done0} finished trials)" if resume else ""))
    if dashboard:  # issue 20: the dashboard beside the search (a reader: it never writes to the run)
        from .cli_dashboard import beside_search
        err.print(f"dashboard: {beside_search(study.run_dir)}", markup=False, highlight=False)
    summary = _run_with_progress(study, done0, quiet)
    _print_best(summary, study.space)


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


def _print_best(summary, space) -> None:
    c = summary.counts
    console.print(f"trials: {sum(c.values())} ({', '.join(f'{k} {v}' for k, v in sorted(c.items()))}) "
                  f"in {summary.elapsed_seconds:.0f}s; run directory {summary.run_dir}")
    if summary.best is None:
        console.print("[red]no trial finished successfully[/]")
        return
    b = summary.best
    console.print(f"best architecture (trial {b.number}): {space.format(b.arch)}")
    val, test = b.metrics.get("val_accuracy"), b.metrics.get("test_accuracy")
    console.print(f"val accuracy {_pct(val)}  test accuracy {_pct(test)}"
                  + (f"  params {int(b.metrics['params']):,}" if "params" in b.metrics else "")
                  + (f"  ({b.fidelity:g} epochs)" if b.fidelity else ""))
    line = reference_line(summary)
    if line:
        console.print(line)


def reference_line(summary) -> str | None:
    """'best found vs reference: +x.xx points' (val, and test when known), said plainly when it did not win."""
    ref = summary.reference
    if not ref:
        return None
    if ref.get("status") != "ok":
        return f"hand-designed reference {ref.get('text')}: {ref.get('status')} ({ref.get('error') or 'no result'})"
    dv, dt = summary.versus_reference("val_accuracy"), summary.versus_reference("test_accuracy")
    if dv is None:
        return None
    m = ref.get("metrics", {})
    text = (f"best found vs reference: {dv:+.2f} points val" + ("" if dt is None else f", {dt:+.2f} test")
            + f" (reference {ref.get('text')}: val {_pct(m.get('val_accuracy'))}, test {_pct(m.get('test_accuracy'))})")
    if dv <= 0:
        text += "; the search did not beat the hand-designed reference"
    return text


def _pct(v: Any) -> str:
    return "-" if v is None else f"{v:.2f}%"


@app.command()
def show(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
    limit: int = typer.Option(50, help="Rows of the trials table (0 = all)."),
) -> None:
    """Print a run's trials and its best architecture."""
    from .study import space_of, summarize

    summary = summarize(run_dir)
    space = space_of(summary)
    if as_json:
        doc = summary.to_dict(space)
        if doc.get("best"):  # the best architecture's cost (issue 6), None where not recorded
            doc["best"].update({k: doc["best"]["metrics"].get(k) for k in ("params", "flops", "latency_ms")})
        sys.stdout.write(json.dumps(doc, default=float) + "\n")
        return
    t = Table(title=f"{run_dir}")
    for col in ("#", "status", "val %", "test %", "epochs", "params", "seconds", "architecture"):
        left = col in ("status", "architecture")
        t.add_column(col, justify="left" if left else "right", no_wrap=True, overflow="ellipsis",
                     min_width=None if col == "architecture" else max(len(col), 6))
    rows = summary.trials if limit <= 0 else summary.trials[-limit:]
    for r in rows:
        m = r.metrics
        t.add_row(str(r.number), r.status if not r.error else f"{r.status}: {r.error[:40]}",
                  _num(m.get("val_accuracy")), _num(m.get("test_accuracy")), _curve_text(summary, r),
                  f"{int(m['params']):,}" if m.get("params") else "-", _num(r.seconds, 1),
                  space.format(r.arch))
    console.print(t)
    _print_best(summary, space)


@app.command()
def evaluate(
    arch: str = typer.Option(..., "--arch", help="Architecture: a JSON file, inline JSON, or the space's text form."),
    space: str = typer.Option(DEFAULTS["space"], help="The space the architecture belongs to."),
    space_opt: Optional[List[str]] = typer.Option(None, "--space-opt", help="Space setting KEY=VALUE."),
    epochs: int = typer.Option(DEFAULTS["epochs"], help="Training epochs."),
    data: Optional[str] = typer.Option(None, help="Dataset: 'digits' (default), a local dataset name, a data "
                                       "folder or a .npz file (as for search)."),
    seed: int = typer.Option(0, help="Training seed."),
    device: str = typer.Option("auto", help="auto, cpu, cuda ..."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
) -> None:
    """Train one architecture (yours, or one from a run's best.json) and report its accuracy."""
    from .data import load_data
    from .evaluators import make_evaluator
    from .spaces import get_space
    from .study import load_architecture

    sp = get_space(space, **parse_settings(space_opt, "space setting"))
    a = load_architecture(sp, arch)
    if epochs < 1:
        raise UserError(f"--epochs must be at least 1, got {epochs}")
    load_data(data)
    ev = make_evaluator("train", sp, data=data, epochs=epochs, device=None if device == "auto" else device,
                        keep_weights=False)
    result = ev.evaluate(a, seed=seed)
    if as_json:
        sys.stdout.write(json.dumps({"architecture": a.to_dict(), "status": result.status, "error": result.error,
                                     "metrics": result.metrics}) + "\n")
        return
    console.print(f"{sp.format(a)}")
    if not result.ok:
        console.print(f"[red]failed[/]: {result.error}")
        raise typer.Exit(1)
    m = result.metrics
    console.print(f"val accuracy {_pct(m['val_accuracy'])}  test accuracy {_pct(m['test_accuracy'])}  "
                  f"params {int(m['params']):,}  {m['train_seconds']:.1f}s")


@app.command()
def spaces() -> None:
    """List the search spaces with their decisions and sizes."""
    from .spaces import get_space, space_names

    for name in space_names():
        sp = get_space(name)
        console.print(f"[bold]{name}[/]: {len(sp.decisions)} decisions, {sp.size:.3g} architectures. "
                      f"{(sp.fn.__doc__ or '').strip().split('. ')[0]}.")


def _curve_text(summary, r) -> str:
    """Epochs trained, with the rungs a multi-fidelity trial reached (e.g. '9 (1>3>9)')."""
    curve = summary.curves.get(r.number, [])
    epochs = r.metrics.get("epochs") or (curve[-1]["epoch"] if curve else None)
    rungs = summary.rungs.get(r.number)
    text = "-" if epochs is None else f"{epochs:g}"
    return text + (f" ({'>'.join(f'{f:g}' for f in rungs)})" if rungs and len(rungs) > 1 else "")


def _num(v: Any, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _register_extras() -> None:
    try:
        from .cli_benchmark import register
    except ImportError:  # pragma: no cover
        return
    register(app)
    from .cli_hardware import register as register_hardware  # profile, cost, export, pareto (issue 6)
    register_hardware(app)
    from .cli_train import register as register_train  # train (issue 9)
    register_train(app)
    from .cli_report import register as register_report  # report (issue 9)
    register_report(app)
    from .cli_dashboard import register as register_dashboard  # dashboard (issue 20)
    register_dashboard(app)


_register_extras()


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors (ours and the option parser's) become one line and exit code 2."""
    try:
        rv = app(args=argv, standalone_mode=False)
    except (UserError, UnknownNameError, ArchitectureError, FileNotFoundError) as e:
        _fail(str(e), 2)
    except typer.Abort:
        _fail("aborted", 1)
    except KeyboardInterrupt:
        _fail("interrupted; resume the run with --resume RUN_DIR", 130)
    except typer.TyperException as e:  # click's usage errors: unknown option, bad value ...
        msg = e.format_message() if hasattr(e, "format_message") else str(e)
        _fail(" ".join(msg.split()), getattr(e, "exit_code", 2))
    sys.exit(rv if isinstance(rv, int) else 0)


def _fail(message: str, code: int) -> None:
    # one line, whatever a path or name in the message holds: control characters are shown escaped
    message = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in " ".join(message.splitlines()))
    err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
