"""User-facing errors: the CLI prints ``error: <message>`` on one line and exits with code 2."""
from __future__ import annotations


class UserError(Exception):
    """A mistake in what the user asked for (bad name, bad file, bad budget). Never a traceback."""
