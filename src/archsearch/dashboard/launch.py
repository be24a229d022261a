"""Starting the dashboard: bind a server (one line when the port is in use), the warning for a non-loopback
host, and the server ``search --dashboard`` starts beside a search in a daemon thread."""
from __future__ import annotations

import errno
import ipaddress
from pathlib import Path

from ..errors import UserError

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
    from .server import DashboardServer

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
