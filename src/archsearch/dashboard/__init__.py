"""``archsearch dashboard``: a live local web app over one run directory or a folder of runs.

A reader beside :mod:`archsearch.report`: it uses the run store read-only (``data.py``: never the run lock, never
a file written into a run), builds JSON views (``views.py``) and serves them with the static page (``server.py``;
Starlette on uvicorn, the page in ``static/`` with a vendored uPlot for the charts, so it works offline). The page
polls every second with a cursor, so a finished trial shows within two seconds without a reload.
"""
from __future__ import annotations

from .server import DashboardServer, make_app

__all__ = ["DashboardServer", "make_app"]
