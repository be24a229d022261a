"""``archsearch dashboard [DIR]``: the live web dashboard over a run directory or a folder of runs."""
from __future__ import annotations

from pathlib import Path

import typer

from ..dashboard.launch import DEFAULT_PORT, host_warning, start_server
from ..errors import UserError


def dashboard(
    folder: Path = typer.Argument(Path("runs"), help="A run directory, or a folder of run directories "
                                  "(default ./runs)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on. Anything but loopback lets other "
                             "machines read the runs: it is printed as a warning."),
    port: int = typer.Option(DEFAULT_PORT, help="Port (0: any free port)."),
    no_browser: bool = typer.Option(False, "--no-browser", help="Do not open a web browser."),
) -> None:
    """Serve a live dashboard of the runs in FOLDER: runs list and comparison, one run (incumbent, every trial,
    trials table, learning curves, Pareto front, architecture weights), one trial (drawing, metrics, commands).
    Read-only: it never writes to a run nor takes its lock."""
    from ._common import console, err
    from ..dashboard.data import find_runs

    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder")
    warning = host_warning(host)
    server = start_server(folder, host, port)
    if warning:
        err.print(warning, markup=False, highlight=False, soft_wrap=True)
    n = len(find_runs(folder.resolve()))
    if n == 0:
        err.print(f"no runs in {folder} yet (no study.db in it or its sub-folders); the page lists them as they "
                  "appear", markup=False, highlight=False, soft_wrap=True)
    console.print(f"dashboard: {server.url}  ({n} run{'s' if n != 1 else ''} in {folder}; Ctrl-C stops it)",
                  markup=False, highlight=False, soft_wrap=True)
    if not no_browser:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


def register(app: typer.Typer) -> None:
    """Add the ``dashboard`` command to the main typer app."""
    app.command("dashboard")(dashboard)
