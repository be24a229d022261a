"""The dashboard's web app (Starlette, served by uvicorn): the static page and a small JSON API.

Endpoints (``run`` is a run's path relative to the folder, ``.`` for the folder itself):

* ``GET /api/runs``                         every run in the folder, one line each (a damaged one: its error)
* ``GET /api/run?run=``                     one run's header: config, counts, best, reference, sections
* ``GET /api/trials?run=&since=``           trials changed after revision ``since`` and the next cursor
* ``GET /api/incumbent?run=``               best so far by finished trials and by seconds
* ``GET /api/curves?run=`` / ``/api/epochs?run=`` / ``/api/pareto?run=``   multi-fidelity, one-shot, Pareto
* ``GET /api/trial?run=&n=``                one trial; ``/api/arch.png?run=&n=`` its drawing (report/draw.py)

Every handler only reads; a path outside the folder is 403, an unknown run or trial 404.
"""
from __future__ import annotations

import io
import json
import socket
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from . import views
from .data import OutsideRoot, RunFolder, RunNotFound

STATIC = Path(__file__).parent / "static"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


class SafeJSON(JSONResponse):
    """JSON with NaN/inf as null (a browser's JSON.parse refuses them) and the dashboard's security headers."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, allow_nan=False, default=_default, separators=(",", ":")).encode("utf-8")


def _default(o: Any) -> Any:
    if isinstance(o, (set, tuple)):
        return list(o)
    if hasattr(o, "item"):  # numpy scalars
        return o.item()
    return str(o)


def _clean(o: Any) -> Any:
    if isinstance(o, float):
        return views.finite(o)
    if isinstance(o, dict):
        return {str(k): _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    return o


class Dashboard:
    """The app's state: the folder and its caches, and drawn architectures (an LRU of PNGs)."""

    def __init__(self, root: str | Path, draw_cache: int = 64):
        self.folder = RunFolder(root)
        self._pngs: OrderedDict[tuple, bytes] = OrderedDict()
        self._draw_cache = draw_cache
        self._draw_lock = threading.Lock()  # matplotlib's pyplot is not thread-safe

    def arch_png(self, run_id: str, number: int) -> bytes | None:
        from ..space import Architecture
        from ..report.draw import draw_architecture

        cache = self.folder.get(run_id)
        row = cache.rows.get(number)
        space = views.space_of(cache)
        if row is None or space is None:
            return None
        key = (str(cache.path), number, row[1])
        with self._draw_lock:
            if key in self._pngs:
                self._pngs.move_to_end(key)
                return self._pngs[key]
            buf = io.BytesIO()
            try:
                draw_architecture(space, Architecture.from_json(row[1]), buf)
            except Exception:  # an architecture the drawer cannot place: the page shows its text form
                return None
            self._pngs[key] = buf.getvalue()
            while len(self._pngs) > self._draw_cache:
                self._pngs.popitem(last=False)
            return self._pngs[key]


class SecurityHeaders:
    """ASGI middleware: a strict Content-Security-Policy (scripts only from the dashboard itself) and no sniffing."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [
                    (b"content-security-policy", _CSP.encode()), (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer")]
            await send(message)
        await self.app(scope, receive, send_with_headers)


def _handler(fn: Callable[[Request], Any]) -> Callable[[Request], Response]:
    """A JSON endpoint: refused paths are 403, unknown runs 404, a bad parameter 400."""
    def endpoint(request: Request) -> Response:
        try:
            out = fn(request)
        except OutsideRoot as e:
            return SafeJSON({"error": str(e)}, status_code=403)
        except RunNotFound as e:
            return SafeJSON({"error": str(e)}, status_code=404)
        except (ValueError, KeyError) as e:
            return SafeJSON({"error": f"bad request: {e}"}, status_code=400)
        if isinstance(out, Response):
            return out
        if out is None:
            return SafeJSON({"error": "not found"}, status_code=404)
        return SafeJSON(_clean(out))
    return endpoint


def _all_trials(c) -> bytes:
    """Every trial of a run as the page's first load gets it (JSON), cached until the trials change."""
    return c.derived("trials-json", lambda c: SafeJSON(None).render(views.trials_since(c, 0)))


def warm(folder: RunFolder) -> None:
    """Read every run in the folder and build what a first page asks for (the runs list, each run's trials as
    JSON, its incumbent and Pareto views): a 10,000-trial run costs ~0.6 s of server time the first time, which
    a browser opened at start would otherwise wait for. Runs in a thread at start; a request meanwhile shares
    the work (the caches' locks), it does not repeat it."""
    try:
        runs = folder.runs()
    except Exception:  # noqa: BLE001 - only a head start: a request that needs it builds it and reports errors
        return
    for rid, c in runs:
        try:
            views.overview(rid, c)  # which re-reads the run (RunCache.refresh)
            if c.error is None:
                _all_trials(c)
                views.incumbent(c)
                views.pareto(c)
        except Exception:  # noqa: BLE001 - as above; one run failing does not stop the others' head start
            continue


def make_app(root: str | Path, allowed_hosts: list[str] | None = None, warm_up: bool = True) -> Starlette:
    """The dashboard over ``root`` (a run directory or a folder of them). ``allowed_hosts``: the Host headers
    accepted (default: loopback names only, which also stops DNS-rebinding pages from reading the API);
    ``warm_up``: build the first page's data in a background thread now (:func:`warm`)."""
    dash = Dashboard(root)
    folder = dash.folder
    if warm_up:
        threading.Thread(target=warm, args=(folder,), name="dashboard-warm-up", daemon=True).start()

    def run_of(request: Request):
        return request.query_params["run"], folder.get(request.query_params["run"])

    def runs(request: Request):
        items = [views.overview(rid, c) for rid, c in folder.runs()]
        return {"root": str(folder.root), "runs": items,
                "message": None if items else f"no runs in {folder.root} (no study.db in it or its sub-folders)"}

    def run(request: Request):
        rid, c = run_of(request)
        return views.detail(rid, c)

    def trials(request: Request):
        _, c = run_of(request)
        since = int(request.query_params.get("since", 0))
        if since > 0:
            return SafeJSON(views.trials_since(c, since))  # rows are JSON-safe already (views.finite)
        return Response(_all_trials(c), media_type="application/json")  # a big run's first load: serialised once

    def trial(request: Request):
        rid, c = run_of(request)
        return views.trial_detail(rid, c, int(request.query_params["n"]))

    def arch_png(request: Request):
        png = dash.arch_png(request.query_params["run"], int(request.query_params["n"]))
        return None if png is None else Response(png, media_type="image/png",
                                                 headers={"Cache-Control": "max-age=3600"})

    def simple(view: Callable) -> Callable[[Request], Any]:
        return lambda request: view(run_of(request)[1])

    def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    routes = [Route("/", index), Route("/favicon.ico", lambda request: Response(status_code=204)),
              Route("/api/runs", _handler(runs)), Route("/api/run", _handler(run)),
              Route("/api/trials", _handler(trials)), Route("/api/trial", _handler(trial)),
              Route("/api/arch.png", _handler(arch_png)),
              Route("/api/incumbent", _handler(simple(views.incumbent))),
              Route("/api/curves", _handler(simple(views.curves))),
              Route("/api/epochs", _handler(simple(views.epochs))),
              Route("/api/pareto", _handler(simple(views.pareto))),
              Mount("/static", StaticFiles(directory=STATIC), name="static")]
    hosts = allowed_hosts or ["127.0.0.1", "localhost", "[::1]", "::1"]
    app = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders),
                                               Middleware(TrustedHostMiddleware, allowed_hosts=hosts),
                                               Middleware(GZipMiddleware, minimum_size=4096, compresslevel=1)])
    return app


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (0: a free port), or OSError (a port in use, a bad host)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


class DashboardServer:
    """The app served by uvicorn on an already bound socket, in a daemon thread (``start``) or in the caller
    (``serve_forever``)."""

    def __init__(self, root: str | Path, host: str = "127.0.0.1", port: int = 8765):
        import uvicorn

        self.sock = bind(host, port)
        self.host, self.port = host, self.sock.getsockname()[1]
        hosts = None if host in LOOPBACK else ["*"]
        config = uvicorn.Config(make_app(root, hosts), log_level="warning", access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def start(self) -> "DashboardServer":
        self.thread = threading.Thread(target=self.serve_forever, name="archsearch-dashboard", daemon=True)
        self.thread.start()
        return self

    def serve_forever(self) -> None:
        self.server.run(sockets=[self.sock])

    def stop(self, timeout: float = 5.0) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout)
        self.sock.close()
