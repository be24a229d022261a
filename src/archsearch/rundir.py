"""The run directory, shared by the black-box study and the one-shot study: where a run is created (refused when
one is there), how it is opened again (its stored configuration), and its outputs written atomically.

A run directory holds ``study.db`` (the run store: configuration, trials, curves, epochs), ``best.json`` (the best
trial: its architecture, value and metrics), ``best.pt`` (its trained weights, when the evaluator keeps them) and
a one-writer lock (:mod:`.runlock`). Both studies write ``best.json`` in one format, so ``archsearch show``,
``archsearch.load``, the report and the dashboard read either kind unchanged.
"""
from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from ._version import __version__
from .errors import UserError
from .runlock import RunLock, acquire
from .storage import RunStore, fresh_dir

__all__ = ["BEST_JSON", "BEST_WEIGHTS", "atomic_save", "default_run_dir", "new_run_dir", "read_config",
           "start_run", "write_best"]

BEST_JSON, BEST_WEIGHTS = "best.json", "best.pt"


def default_run_dir(space: str, strategy: str, root: str | Path = "runs") -> Path:
    return fresh_dir(root, f"{space}-{strategy}")


def new_run_dir(run_dir: str | Path | None, space: str, strategy: str) -> Path:
    """The directory a new run goes to (``runs/<date-time>-<space>-<strategy>`` by default); one that already
    holds a run is refused, naming how to resume it."""
    path = Path(run_dir) if run_dir else default_run_dir(space, strategy)
    if RunStore.is_run(path):
        raise UserError(f"{path} already holds a run; resume it with --resume {path}")
    return path


def start_run(run_dir: Path, config: dict[str, Any]) -> tuple[RunStore, RunLock, dict[str, Any]]:
    """Take the run directory's lock, create its store and write the configuration (with the version and the
    time of creation) and a zero elapsed time; return the store, the lock and the configuration as stored."""
    lock = acquire(run_dir)
    store = RunStore(run_dir, create=True)
    stored = {"version": __version__, "created": datetime.now().isoformat(timespec="seconds"), **config}
    store.set_meta("config", stored)
    store.set_meta("elapsed_seconds", 0.0)
    return store, lock, stored


def read_config(run_dir: str | Path) -> dict[str, Any]:
    """The stored configuration of the run in ``run_dir`` (one line when there is no run or no configuration)."""
    if not RunStore.is_run(run_dir):
        raise UserError(f"{run_dir} is not an archsearch run directory (no study.db)")
    store = RunStore(run_dir)
    try:
        cfg = store.get_meta("config")
    finally:
        store.close()
    if not cfg:
        raise UserError(f"{run_dir}: the run database has no configuration")
    return cfg


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file, then rename: a reader sees the old file or the new one, never half."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def write_best(run_dir: Path, doc: dict[str, Any]) -> None:
    """``best.json``, atomically."""
    tmp = run_dir / (BEST_JSON + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, default=float))
    os.replace(tmp, run_dir / BEST_JSON)
