"""The ``archsearch`` command line: thin, it parses options and calls the API.

One module per command group, each with a ``register(app)``: ``search`` (search), ``runs`` (show, evaluate,
spaces), ``benchmark`` (benchmark, benchmark-hw), ``hardware`` (profile, cost, export, pareto), ``train``,
``report``, ``dashboard``; ``_common`` holds what they share (consoles, settings, the one-line error). This module
builds the app from them; none of them imports it. User mistakes print one line ``error: ...`` on stderr and exit
with code 2, never a traceback.
"""
from __future__ import annotations

import sys

import typer

from ..errors import UserError
from ..registry import UnknownNameError
from ..space import ArchitectureError
from . import benchmark, dashboard, hardware, report, runs, search, train
from . import _common
from ._common import fail

app = typer.Typer(add_completion=False, no_args_is_help=False, pretty_exceptions_enable=False,
                  help="archsearch: neural architecture search on PyTorch.")
for _group in (search, runs, benchmark, hardware, train, report, dashboard):  # the order of ``--help``
    _group.register(app)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors (ours and the option parser's) become one line and exit code 2."""
    # the console command: a budget's clock starts with the process; called inside a program: with the search
    _common.CLOCK_START = _common.process_started() if argv is None else None
    try:
        rv = app(args=argv, standalone_mode=False)
    except (UserError, UnknownNameError, ArchitectureError, FileNotFoundError) as e:
        fail(str(e), 2)
    except typer.Abort:
        fail("aborted", 1)
    except KeyboardInterrupt:
        fail("interrupted; resume the run with --resume RUN_DIR", 130)
    except typer.TyperException as e:  # click's usage errors: unknown option, bad value ...
        msg = e.format_message() if hasattr(e, "format_message") else str(e)
        fail(" ".join(msg.split()), getattr(e, "exit_code", 2))
    sys.exit(rv if isinstance(rv, int) else 0)
