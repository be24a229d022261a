"""Hardware-aware commands: ``profile`` (per-op latency table), ``cost`` (params, MAdds, latency of one
architecture), ``export`` (a run's best model to ONNX / TorchScript / torch.export) and ``pareto`` (a run's
Pareto front, plotted and tabulated). (``search``'s ``--objective``, ``--constraint`` and ``--latency-*`` options
become an objective and evaluator options in :class:`~archsearch.run_config.RunConfig`.)

Thin, like the rest of the CLI: options are parsed here, the work is done in :mod:`archsearch.hardware`.
The main CLI adds the commands with ``register(app)``.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, List, Optional

import typer
from rich.console import Console
from rich.table import Table

from ..errors import UserError
from ._common import input_shape, space_from_options


def profile(
    space: str = typer.Option("mbconv", help="Search space to profile (its ops must be latency units: mbconv)."),
    space_opt: Optional[List[str]] = typer.Option(None, "--space-opt", help="Space setting KEY=VALUE (repeatable)."),
    input_size: Optional[str] = typer.Option(None, "--input", help="Input CxHxW, e.g. 3x224x224 (default: the "
                                             "dataset's)."),
    classes: Optional[int] = typer.Option(None, help="Number of classes (default: the dataset's, or 1000)."),
    data: Optional[str] = typer.Option(None, help="Dataset whose input size to use (default digits)."),
    device: str = typer.Option("cpu", help="Device to measure on: cpu, cuda, cuda:1 ..."),
    threads: int = typer.Option(1, help="CPU threads while measuring."),
    batch: int = typer.Option(1, help="Batch size."),
    warmup: int = typer.Option(3, help="Untimed runs per op."),
    repeats: int = typer.Option(15, help="Timed runs per op (the entry is their median)."),
    rounds: int = typer.Option(1, help="Passes over all ops (the entry is the median of the passes)."),
    clock: str = typer.Option("wall", help="wall, or cpu: the thread's CPU time (1 thread; robust on a busy "
                              "machine)."),
    statistic: str = typer.Option("median", help="Of an op's timed runs: median, or min (steadier on a shared "
                                  "machine: other processes only add time)."),
    output: Path = typer.Option(..., "--output", "-o", help="The table (JSON) to write."),
    layer_costs: Optional[Path] = typer.Option(None, "--layer-costs", help="Also write {decision: {candidate: ms}} "
                                               "for one-shot strategies' cost_table (mbconv with block_choice=op)."),
) -> None:
    """Measure every candidate op of a space at every input shape it meets, once: a per-op latency table."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..hardware.latency_table import STATISTICS, profile_space, space_units

    sp = space_from_options(space, space_opt)
    shape = input_shape(input_size, classes, data)
    if threads < 1 or batch < 1 or repeats < 1 or warmup < 0:
        raise UserError("--threads, --batch and --repeats must be at least 1, --warmup at least 0")
    if clock not in ("wall", "cpu") or (clock == "cpu" and (threads != 1 or not device.startswith("cpu"))):
        raise UserError(f"bad --clock {clock!r}: use wall, or cpu (on the CPU with --threads 1)")
    if statistic not in STATISTICS:
        raise UserError(f"bad --statistic {statistic!r}: use {' or '.join(STATISTICS)}")
    n = len(list(space_units(sp, shape)))
    err = Console(stderr=True)
    with Progress(TextColumn("[bold]profiling"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err) as bar:
        task = bar.add_task("ops", total=n * rounds)
        table = profile_space(sp, shape, device=device, threads=threads, batch=batch, warmup=warmup,
                              repeats=repeats, rounds=rounds, clock=clock, statistic=statistic,
                              progress=lambda done, total: bar.update(task, completed=done))
    table.save(output)
    if layer_costs is not None:
        costs = table.layer_costs(sp, shape)
        if not costs:
            raise UserError(f"space {sp.name} has no op decision whose candidates are latency units (for mbconv: "
                            f"--space-opt block_choice=op); the table is written, the layer costs are not")
        layer_costs.parent.mkdir(parents=True, exist_ok=True)
        layer_costs.write_text(json.dumps(costs, indent=1))
    size = "x".join(map(str, shape.size))
    Console(soft_wrap=True).print(f"{len(table)} ops of space {sp.name} at {size} on {device} in "
                                  f"{table.meta['profile_seconds']:.0f} s -> {output}", markup=False, highlight=False)


def cost(
    arch: str = typer.Option(..., "--arch", help="Architecture: JSON, a file, the space's text form or a preset "
                             "(mobilenetv3_large)."),
    space: str = typer.Option("mbconv", help="The space the architecture belongs to."),
    space_opt: Optional[List[str]] = typer.Option(None, "--space-opt", help="Space setting KEY=VALUE."),
    input_size: Optional[str] = typer.Option(None, "--input", help="Input CxHxW (default: the dataset's)."),
    classes: Optional[int] = typer.Option(None, help="Number of classes (default: the dataset's, or 1000)."),
    data: Optional[str] = typer.Option(None, help="Dataset whose input size to use (default digits)."),
    latency_device: Optional[str] = typer.Option(None, "--latency-device", help="Also measure latency here."),
    threads: int = typer.Option(1, help="CPU threads while measuring latency."),
    clock: str = typer.Option("wall", help="wall, or cpu: the thread's CPU time (1 thread)."),
    latency_table: Optional[Path] = typer.Option(None, "--latency-table", help="Also predict latency from a table."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Parameters, FLOPs and multiply-adds of one architecture (and its latency, measured or predicted)."""
    import torch

    from ..hardware.cost import measure_latency, model_cost
    from ..hardware.latency_table import LatencyTable
    from ..study import load_architecture

    sp = space_from_options(space, space_opt)
    a = load_architecture(sp, arch)
    shape = input_shape(input_size, classes, data)
    with torch.device("meta"):
        meta_model = sp.build(a, shape)
    c = model_cost(meta_model, shape.size)
    out: dict[str, Any] = {"architecture": sp.format(a), "input": list(shape.size), "classes": shape.num_classes,
                           **{k: int(v) for k, v in c.metrics().items()}}
    if latency_table is not None:
        out["predicted_latency_ms"] = LatencyTable.load(latency_table).predict_model(meta_model)
    if latency_device is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = sp.build(a, shape)
        if clock not in ("wall", "cpu") or (clock == "cpu" and threads != 1):
            raise UserError(f"bad --clock {clock!r}: use wall, or cpu (with --threads 1)")
        stats = measure_latency(model, shape.size, device=latency_device, threads=threads, copy_model=False,
                                clock=clock)
        out["latency_ms"], out["latency"] = stats.median_ms, stats.to_dict()
    if as_json:
        sys.stdout.write(json.dumps(out) + "\n")
        return
    con = Console()
    con.print(out["architecture"])
    line = f"params {out['params']:,}  MAdds {out['macs']:,} ({out['macs'] / 1e6:.1f}M)  FLOPs {out['flops']:,}"
    if "predicted_latency_ms" in out:
        line += f"  predicted {out['predicted_latency_ms']:.3f} ms"
    if "latency_ms" in out:
        line += f"  measured {out['latency_ms']:.3f} ms (median of {out['latency']['repeats']}, {latency_device})"
    con.print(line)


def export(
    run_dir: Path = typer.Argument(..., help="A run directory (its best architecture and weights)."),
    fmt: str = typer.Option(..., "--format", help="onnx, torchscript or export (torch.export, .pt2)."),
    output: Path = typer.Option(..., "--output", "-o", help="File to write."),
    check: bool = typer.Option(True, "--check/--no-check", help="Run the file and compare with PyTorch."),
) -> None:
    """Export a run's best model (with its trained weights) and check the file against PyTorch."""
    from ..hardware.export import FORMATS, ExportMismatch, export_model

    if fmt not in FORMATS:
        raise UserError(f"unknown export format {fmt!r}; choose from: {', '.join(FORMATS)}")
    model, shape = _run_model(run_dir)
    try:
        report = export_model(model, shape.size, output, fmt, check=check)
    except ExportMismatch as e:
        raise UserError(f"the export does not reproduce the model: {e}") from None
    msg = f"{report.format} ({report.exporter}) -> {report.path}"
    if report.checked_with:
        msg += f"; checked with {report.checked_with}: max |difference| {report.max_abs_diff:.2e}"
    Console(soft_wrap=True).print(msg, markup=False, highlight=False)


def _run_model(run_dir: Path):
    from ..api import load
    from ..evaluators import EvaluatorSpec
    from ..study import BEST_WEIGHTS

    run = load(run_dir)
    if run.best is None:
        raise UserError(f"{run_dir} has no successful trial to export")
    if not (Path(run_dir) / BEST_WEIGHTS).is_file():
        raise UserError(f"{run_dir} has no trained weights ({BEST_WEIGHTS}); its evaluator keeps none (a tabular "
                        f"run) or the run was interrupted before the best trial finished")
    cfg = run.summary.config
    ev = EvaluatorSpec(cfg["space"]["name"], cfg["space"]["config"], cfg["evaluator"]["name"],
                       cfg["evaluator"]["options"]).build()
    if not hasattr(ev, "data"):
        raise UserError(f"{run_dir}: its evaluator ({cfg['evaluator']['name']}) has no data, so no input size")
    return run.model(), ev.data.shape


def pareto(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    x: Optional[str] = typer.Option(None, help="Cost metric on the x axis (default: the run's Pareto objective, "
                                    "else latency_ms, or params when latency was not measured)."),
    y: Optional[str] = typer.Option(None, help="Quality metric on the y axis (default val_accuracy)."),
    plot: Optional[Path] = typer.Option(None, "--plot", "-o", help="PNG to write (default RUN_DIR/pareto.png)."),
    as_json: bool = typer.Option(False, "--json", help="Print the front as JSON instead of a table."),
) -> None:
    """The Pareto front of a run (feasible trials): a table and a plot."""
    from ..hardware.pareto_report import default_axes, front_report, plot_front
    from ..study import space_of, summarize

    summary = summarize(run_dir)
    sp = space_of(summary)
    dx, dy = default_axes(summary.config.get("objective"), summary.trials)
    rep = front_report(summary.trials, sp.format, x or dx, y or dy)
    png = plot_front(rep, plot or Path(run_dir) / "pareto.png")
    if as_json:
        sys.stdout.write(json.dumps({**rep.to_dict(), "plot": str(png)}, default=float) + "\n")
        return
    t = Table(title=f"Pareto front of {run_dir}: {rep.goals[1]} vs {rep.goals[0]} "
                    f"({len(rep.front)} of {rep.n_feasible} feasible trials)")
    for col in ("#", rep.goals[0].metric, rep.goals[1].metric, "architecture"):
        t.add_column(col, justify="left" if col == "architecture" else "right", overflow="fold")
    for r in rep.front:
        t.add_row(str(r["trial"]), f"{r[rep.goals[0].metric]:.4g}", f"{r[rep.goals[1].metric]:.4g}", r["text"])
    con = Console()
    con.print(t)
    if rep.n_infeasible:
        con.print(f"{rep.n_infeasible} infeasible trial(s) left out (shown as x in the plot)")
    con.print(f"plot: {png}")


def register(app: typer.Typer) -> None:
    """Add ``profile``, ``cost``, ``export`` and ``pareto`` to the main typer app."""
    app.command("profile")(profile)
    app.command("cost")(cost)
    app.command("export")(export)
    app.command("pareto")(pareto)
