"""``archsearch report RUN_DIR``: one self-contained HTML page (figures embedded) plus the figures as PNG files."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def report(
    run_dir: Path = typer.Argument(..., help="A run directory (any strategy: black-box, one-shot, multi-objective)."),
    out: Optional[Path] = typer.Option(None, help="Output folder (default RUN_DIR/report)."),
    rows: int = typer.Option(200, help="Rows of the trials table (0 = all)."),
) -> None:
    """Write a report of a run: progress, results, the best architecture drawn, Pareto front, α over epochs."""
    from ._common import console
    from ..report import write_report

    rep = write_report(run_dir, out, max_rows=rows)
    console.print(f"report: {rep.html}  ({len(rep.figures)} figures: {', '.join(sorted(rep.figures))})",
                  highlight=False)


def register(app: typer.Typer) -> None:
    """Add the ``report`` command to the main typer app."""
    app.command("report")(report)
