"""``archsearch benchmark``: compare search strategies on a tabular benchmark over many seeds.

Thin: parses options, calls :func:`archsearch.benchmark.run_benchmark`, prints the table and writes the files.
The main CLI adds the command with ``register(app)`` and turns a UserError into ``error: ...`` (exit code 2).
"""
from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

from ..errors import UserError

DEFAULT_STRATEGIES = "random,evolution,optuna-tpe"


def _command_line(space: str, strategies: str, seeds: int, trials: int, out: Path, table: Optional[Path],
                  workers: Optional[int]) -> str:
    """The command as a user would retype it (for results.md and docs)."""
    parts = ["archsearch", "benchmark", "--space", space, "--strategies", strategies, "--seeds", str(seeds),
             "--trials", str(trials), "--out", str(out)]
    if table is not None:
        parts += ["--table", str(table)]
    if workers is not None:
        parts += ["--workers", str(workers)]
    return shlex.join(parts)


def benchmark(
    space: str = typer.Option("nb201", "--space", help="Search space (the table must be of this space)."),
    strategies: str = typer.Option(DEFAULT_STRATEGIES, "--strategies",
                                   help="Comma-separated strategy names; random is always included."),
    seeds: int = typer.Option(30, "--seeds", help="Number of seeds (0..N-1), the same for every strategy."),
    trials: Optional[int] = typer.Option(None, "--trials", help="Queries per run [default 150; with --seconds: "
                                         "the most a run may make, 10000]."),
    seconds: Optional[float] = typer.Option(None, "--seconds", help="Simulated budget per run: each query is "
                                            "charged its cell's 12-epoch CIFAR-10 training time (NAS-Bench-201's "
                                            "protocol: 12000 s hold ~109 queries); deterministic."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder [default: bench-out/<timestamp>]."),
    table: Optional[Path] = typer.Option(None, "--table",
                                         help="Benchmark CSV (columns arch, cellstr, cifar10-val, cifar10-test) "
                                              "[default: the packaged NAS-Bench-201 CIFAR-10 12-epoch table]."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Worker processes [default: every core]."),
    objectives: Optional[str] = typer.Option(None, "--objectives", help="Hardware-aware mode: metrics to trade "
                                             "off, e.g. val_accuracy,latency_ms (hypervolume of the fronts found)."),
    hardware: Optional[str] = typer.Option(None, "--hardware", help="Device whose measured latency is latency_ms: "
                                           "pixel3, raspi4, fpga, eyeriss, xeon_gold_6226, titan_rtx."),
    constraint: Optional[List[str]] = typer.Option(None, "--constraint", help="Hard constraint, repeatable, e.g. "
                                                   "latency_ms<=10.676 (incumbent: best feasible)."),
    metrics_table: Optional[List[Path]] = typer.Option(None, "--metrics-table", help="Further metric table(s) "
                                                       "joined on arch [default: the packaged NB201 latencies]."),
) -> None:
    """Run every strategy on the same seeds against a tabular benchmark; report the incumbent's test accuracy
    (or, with --objectives / --constraint / --hardware, the hypervolume of the fronts found or the feasible
    incumbent's test accuracy)."""
    from ..benchmark.tabular import run_benchmark, table_rows, write_outputs  # keep `archsearch --help` fast

    if seconds is not None and seconds <= 0:
        raise UserError(f"--seconds must be positive, got {seconds}")
    if trials is None:
        trials = 150 if seconds is None else 10000
    if objectives or constraint or hardware or metrics_table:
        if seconds is not None:
            raise UserError("--seconds is for the single-objective benchmark (not with --objectives, --constraint, "
                            "--hardware or --metrics-table)")
        from .benchmark_hw import benchmark_hw
        return benchmark_hw(space, strategies, seeds, trials, out, table, workers, objectives, hardware,
                            constraint or [], metrics_table)

    if seeds < 1:
        raise UserError(f"--seeds must be positive, got {seeds}")
    if trials < 1:
        raise UserError(f"--trials must be positive, got {trials}")
    if workers is not None and workers < 1:
        raise UserError(f"--workers must be positive, got {workers}")
    names = [s.strip() for s in strategies.split(",") if s.strip()]
    if not names:
        raise UserError("--strategies names no strategy")
    if out is None:
        out = Path("bench-out") / time.strftime("%Y%m%d-%H%M%S")
    console = Console()
    if not console.is_terminal:  # piped or captured: no reason to wrap at 80 columns
        console = Console(width=120)
    err = Console(stderr=True)
    with err.status(f"benchmark: {len(names)} strategies x {seeds} seeds x {trials} queries") as status:
        def progress(done: int, total: int) -> None:
            status.update(f"benchmark: {done}/{total} runs")
        result = run_benchmark(names, seeds=seeds, trials=trials, space=space, table=table, workers=workers,
                               progress=progress, seconds=seconds)
    command = _command_line(space, strategies, seeds, trials, out, table, workers) \
        + (f" --seconds {seconds:g}" if seconds is not None else "")
    paths = write_outputs(result, out, command=command)

    header, rows = table_rows(result, short=True)
    t = Table(box=None, padding=(0, 1), pad_edge=False,
              title=f"Incumbent test accuracy (%) after N queries, mean ± std over {seeds} seeds",
              caption=f"ms/query: strategy overhead (ask + tell). {result.workers} worker(s), "
                      f"{result.wall_seconds:.1f} s. Table: {result.table}")
    for i, h in enumerate(header):
        t.add_column(h, justify="left" if i == 0 else "right", no_wrap=True)
    for r in rows:
        t.add_row(*r)
    if seconds is None:
        console.print(t)
    else:
        from ..benchmark.tabular import markdown_seconds_table
        console.print(f"Incumbent test accuracy (%) at simulated seconds, mean ± std over {seeds} seeds "
                      f"(each query charged its cell's training time):")
        console.print(markdown_seconds_table(result), markup=False, highlight=False)
    for kind, p in paths.items():
        console.print(f"{kind:>8}: {p}")


def register(app: typer.Typer) -> None:
    """Add the ``benchmark`` command to the main typer app."""
    app.command("benchmark")(benchmark)


def _standalone() -> None:  # pragma: no cover - `python -m archsearch.cli.benchmark ...` on its own
    app = typer.Typer(add_completion=False)
    register(app)

    @app.callback()
    def _root() -> None:
        """archsearch (benchmark only)."""

    try:
        app()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2)


if __name__ == "__main__":  # pragma: no cover
    _standalone()
