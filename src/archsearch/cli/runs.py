"""``archsearch show``, ``evaluate``, ``spaces`` and ``strategies``: a run's trials, one architecture trained, the
spaces, the strategies with what they declare."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from ..api import DEFAULTS
from ..errors import UserError
from ..schedulers import epochs_text
from ._common import console, num, parse_settings, pct, print_best


def show(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
    limit: int = typer.Option(50, help="Rows of the trials table (0 = all)."),
) -> None:
    """Print a run's trials and its best architecture."""
    from ..study import space_of, summarize

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
                  num(m.get("val_accuracy")), num(m.get("test_accuracy")), _curve_text(summary, r),
                  f"{int(m['params']):,}" if m.get("params") else "-", num(r.seconds, 1),
                  space.format(r.arch))
    console.print(t)
    print_best(summary, space)


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
    from ..datasets import load_data
    from ..evaluators import make_evaluator
    from ..spaces import get_space
    from ..study import load_architecture

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
    console.print(f"val accuracy {pct(m['val_accuracy'])}  test accuracy {pct(m['test_accuracy'])}  "
                  f"params {int(m['params']):,}  {m['train_seconds']:.1f}s")


def spaces() -> None:
    """List the search spaces with their decisions and sizes."""
    from ..spaces import get_space, space_names

    for name in space_names():
        sp = get_space(name)
        console.print(f"[bold]{name}[/]: {len(sp.decisions)} decisions, {sp.size:.3g} architectures. "
                      f"{(sp.fn.__doc__ or '').strip().split('. ')[0]}.")


def strategies(name: Optional[str] = typer.Argument(None, help="A strategy: list its options.")) -> None:
    """List the strategies of both kinds with what each declares: the objectives it searches by and its
    options (--strategy-opt KEY=VALUE); with NAME, that strategy's options with their types and defaults."""
    from rich.markup import escape
    from ..strategies.catalog import describe, strategy_names

    if name is not None:
        info = describe(name)
        console.print(f"[bold]{escape(info.name)}[/] ({info.kind}; searches by: "
                      f"{', '.join(sorted(info.objectives))}). {escape(info.summary)}.")
        table = Table("option", "type", "default", box=None)
        for o in info.options:
            table.add_row(escape(o.name), escape(o.type), escape(repr(o.default)))
        console.print(table)
        if info.open_options:
            console.print("further options are passed on to what it wraps (refused there when unknown)")
        return
    table = Table(box=None)
    table.add_column("strategy", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    for col in ("searches by", "options", "what it is"):
        table.add_column(col)
    for kind, names in strategy_names().items():
        for n in names:
            info = describe(n)
            opts = f"{len(info.options)}{'+' if info.open_options else ''}"
            table.add_row(escape(n), kind, ", ".join(sorted(info.objectives)), opts, escape(info.summary))
    console.print(table)
    console.print("options: archsearch strategies NAME; searches by: single = one value, vector = a Pareto "
                  "objective, constrained = told the constraints, reference_point = a hypervolume reference")


def _curve_text(summary, r) -> str:
    """Epochs trained, with the rungs a multi-fidelity trial reached (e.g. '9 (1>3>9)')."""
    curve = summary.curves.get(r.number, [])
    epochs = r.metrics.get("epochs") or (curve[-1]["epoch"] if curve else None)
    rungs = summary.rungs.get(r.number)
    text = "-" if epochs is None else epochs_text(epochs)
    return text + (f" ({'>'.join(epochs_text(f) for f in rungs)})" if rungs and len(rungs) > 1 else "")


def register(app: typer.Typer) -> None:
    app.command("show")(show)
    app.command("evaluate")(evaluate)
    app.command("spaces")(spaces)
    app.command("strategies")(strategies)
