"""``archsearch benchmark --objectives ... --hardware ... --constraint ...``: the hardware-aware tabular benchmark.

Thin: checks options, calls :func:`archsearch.benchmark.hardware.run_hw_benchmark`, prints the table and writes
``results.json``, ``results.md`` and the plot. :mod:`.cli_benchmark` hands over to it when any of those options
is given.
"""
from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import List, Optional

from rich.console import Console
from rich.table import Table

from ..errors import UserError


def _command_line(strategies: str, seeds: int, trials: int, out: Path, table: Optional[Path],
                  workers: Optional[int], objectives: Optional[str], hardware: Optional[str],
                  constraints: List[str], metrics_tables: Optional[List[Path]]) -> str:
    parts = ["archsearch", "benchmark", "--strategies", strategies, "--seeds", str(seeds), "--trials", str(trials)]
    if objectives:
        parts += ["--objectives", objectives]
    if hardware:
        parts += ["--hardware", hardware]
    for c in constraints:
        parts += ["--constraint", c]
    for t in metrics_tables or []:
        parts += ["--metrics-table", str(t)]
    if table is not None:
        parts += ["--table", str(table)]
    if workers is not None:
        parts += ["--workers", str(workers)]
    return shlex.join(parts + ["--out", str(out)])


def benchmark_hw(space: str, strategies: str, seeds: int, trials: int, out: Optional[Path], table: Optional[Path],
                 workers: Optional[int], objectives: Optional[str], hardware: Optional[str],
                 constraints: List[str], metrics_tables: Optional[List[Path]]) -> None:
    from ..benchmark.hardware import hw_table_rows, run_hw_benchmark, write_hw_outputs

    if space != "nb201":
        raise UserError(f"the hardware-aware benchmark uses the nb201 tables, not space {space!r}")
    if seeds < 1 or trials < 1:
        raise UserError(f"--seeds and --trials must be positive, got {seeds} and {trials}")
    if workers is not None and workers < 1:
        raise UserError(f"--workers must be positive, got {workers}")
    names = [s.strip() for s in strategies.split(",") if s.strip()]
    if not names:
        raise UserError("--strategies names no strategy")
    objective = objectives or "val_accuracy"
    if out is None:
        out = Path("bench-out") / time.strftime("%Y%m%d-%H%M%S")
    console = Console() if Console().is_terminal else Console(width=140)
    err = Console(stderr=True)
    with err.status(f"benchmark: {len(names)} strategies x {seeds} seeds x {trials} queries") as status:
        result = run_hw_benchmark(names, objective=objective, constraints=constraints, hardware=hardware,
                                  seeds=seeds, trials=trials, table=table, metrics_tables=metrics_tables,
                                  workers=workers,
                                  progress=lambda d, n: status.update(f"benchmark: {d}/{n} runs"))
    command = _command_line(strategies, seeds, trials, out, table, workers, objectives, hardware, constraints,
                            metrics_tables)
    paths = write_hw_outputs(result, out, command=command)
    header, rows = hw_table_rows(result)
    title = ("Hypervolume fraction of the front found" if result.multi
             else "Test accuracy (%) of the feasible incumbent")
    t = Table(box=None, padding=(0, 1), pad_edge=False,
              title=f"{title} after N queries, mean ± std over {seeds} seeds",
              caption=f"{result.workers} worker(s), {result.wall_seconds:.1f} s."
                      + (f" Best feasible architecture's test accuracy: {result.scorer.best_feasible_test:.2f}."
                         if not result.multi else ""))
    for i, h in enumerate(header):
        t.add_column(h, justify="left" if i == 0 else "right", no_wrap=True)
    for r in rows:
        t.add_row(*r)
    console.print(t)
    for kind, p in paths.items():
        console.print(f"{kind:>8}: {p}")
