"""``archsearch dashboard [DIR]``: the live web dashboard over a run directory or a folder of runs, and the
helper ``search --dashboard`` uses to start it beside a search."""
from __future__ import annotations

import errno
import ipaddress
from pathlib import Path
from typing import Optional

import typer

from .errors import UserError

DEFAULT_PORT = 8765


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def start_server(root: Path, host: str = "127.0.0.1", port: int = DEFAULT_PORT):
    """Bind and return a :class:`~archsearch.dashboard.DashboardServer` (not yet serving); a port in use or a
    host that cannot be bound is a one-line UserError."""
    from .dashboard import DashboardServer

    try:
        return DashboardServer(root, host, port)
    except OSError as e:
        reason = "is in use" if getattr(e, "errno", None) == errno.EADDRINUSE else f"cannot be bound ({e.strerror or e})"
        raise UserError(f"port {port} on {host} {reason}; pick another with --port (0: any free port)") from None


def host_warning(host: str) -> str | None:
    """The warning printed when the dashboard listens beyond this machine."""
    if _is_loopback(host):
        return None
    return (f"warning: the dashboard listens on {host}, so other machines can read these runs (no login); "
            "use the default 127.0.0.1 unless you mean it")


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
    from .cli import console, err
    from .dashboard.data import find_runs

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


def beside_search(run_dir: Path | None, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> str:
    """``search --dashboard``: serve the dashboard over the run's parent folder (``runs`` when the run directory
    is not known yet) in a daemon thread that ends with the search; returns the address. A port in use falls back
    to any free port."""
    from urllib.parse import quote

    folder = Path("runs").resolve() if run_dir is None else Path(run_dir).resolve().parent
    try:
        server = start_server(folder, host, port)
    except UserError:
        server = start_server(folder, host, 0)
    server.start()
    return server.url + ("" if run_dir is None else f"#/run/{quote(Path(run_dir).resolve().name, safe='')}")


def register(app: typer.Typer) -> None:
    """Add the ``dashboard`` command to the main typer app."""
    app.command("dashboard")(dashboard)
