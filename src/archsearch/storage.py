"""SQLite run store: one database file per run directory (WAL mode), single writer (the driver).

Every finished trial is committed before the next one is asked, so a killed search loses at most the trials
that were running. Tables:

* ``meta``   key/value JSON: the study's configuration (space, strategy, evaluator, objective, budget, seed)
  and its counters (elapsed seconds).
* ``trials`` one row per asked architecture: number (ask order), architecture JSON, status
  (running/ok/failed/infeasible), value (the objective, maximised), values (JSON vector for multi-objective),
  metrics JSON, error, seed, fidelity, start/end wall times, worker, ask/tell event numbers (for exact replay).
* ``epochs`` one row per finished epoch of a one-shot (supernet) search: metrics JSON (losses, supernet val
  accuracy, seconds), alphas JSON (label -> architecture weights, softmax(α)) and the architecture derived then.
"""
from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from .space import Architecture

DB_NAME = "study.db"
RUNNING = "running"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
    number INTEGER PRIMARY KEY,
    arch TEXT NOT NULL,
    status TEXT NOT NULL,
    value REAL,
    "values" TEXT,
    metrics TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    seed INTEGER NOT NULL,
    fidelity REAL,
    started REAL NOT NULL,
    finished REAL,
    worker TEXT,
    ask_event INTEGER NOT NULL,
    tell_event INTEGER,
    attempts INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS epochs (
    epoch INTEGER PRIMARY KEY,
    metrics TEXT NOT NULL DEFAULT '{}',
    alphas TEXT,
    arch TEXT,
    finished REAL NOT NULL
);
"""


@dataclass
class EpochRecord:
    """One epoch of a one-shot search (``alphas``: label -> softmax(α); None for strategies without α)."""

    epoch: int
    metrics: dict[str, float]
    alphas: dict[str, list[float]] | None
    arch: Architecture | None
    finished: float


@dataclass
class TrialRecord:
    number: int
    arch: Architecture
    status: str
    seed: int
    value: float | None = None
    values: tuple[float, ...] | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    fidelity: float | None = None
    started: float = 0.0
    finished: float | None = None
    worker: str | None = None
    ask_event: int = 0
    tell_event: int | None = None
    attempts: int = 1

    @property
    def done(self) -> bool:
        return self.status != RUNNING

    @property
    def seconds(self) -> float | None:
        return None if self.finished is None else self.finished - self.started


class RunStore:
    """The run's database. Not shared between processes: only the driver writes."""

    def __init__(self, run_dir: str | Path, create: bool = False):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / DB_NAME
        if create:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        elif not self.path.exists():
            raise FileNotFoundError(f"{self.run_dir} is not an archsearch run directory (no {DB_NAME})")
        self.conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(_SCHEMA)

    @staticmethod
    def is_run(run_dir: str | Path) -> bool:
        return (Path(run_dir) / DB_NAME).is_file()

    def close(self) -> None:
        self.conn.close()

    # ---- meta -------------------------------------------------------------------------------------------------
    def set_meta(self, key: str, value: Any) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def meta(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self.conn.execute("SELECT key, value FROM meta")}

    # ---- trials -----------------------------------------------------------------------------------------------
    def add_trial(self, number: int, arch: Architecture, seed: int, ask_event: int,
                  fidelity: float | None = None, worker: str | None = None) -> None:
        self.conn.execute(
            "INSERT INTO trials(number, arch, status, seed, fidelity, started, worker, ask_event) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (number, arch.to_json(), RUNNING, seed, fidelity, time.time(), worker, ask_event))

    def restart_trial(self, number: int, note: str | None = None) -> None:
        """A trial re-queued after a crash or a retry: running again from now (``note``: why, kept in error)."""
        self.conn.execute("UPDATE trials SET status = ?, started = ?, attempts = attempts + 1, error = ? "
                          "WHERE number = ?", (RUNNING, time.time(), note, number))

    def finish_trial(self, number: int, status: str, value: float | None, values: tuple[float, ...] | None,
                     metrics: dict[str, float], error: str | None, tell_event: int,
                     extra_meta: dict[str, Any] | None = None) -> None:
        """Record a finished trial (and any meta counters) in one committed transaction."""
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute(
                'UPDATE trials SET status = ?, value = ?, "values" = ?, metrics = ?, error = ?, finished = ?, '
                "tell_event = ? WHERE number = ?",
                (status, value, json.dumps(list(values)) if values is not None else None,
                 json.dumps(_clean(metrics)), error, time.time(), tell_event, number))
            for k, v in (extra_meta or {}).items():
                self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (k, json.dumps(v)))

    def trials(self, status: str | None = None) -> list[TrialRecord]:
        q = 'SELECT number, arch, status, seed, value, "values", metrics, error, fidelity, started, finished, ' \
            "worker, ask_event, tell_event, attempts FROM trials"
        args: tuple = ()
        if status is not None:
            q += " WHERE status = ?"
            args = (status,)
        return [_row(r) for r in self.conn.execute(q + " ORDER BY number", args)]

    def iter_trials(self) -> Iterator[TrialRecord]:
        yield from self.trials()

    # ---- epochs (one-shot searches) -----------------------------------------------------------------------------
    def add_epoch(self, epoch: int, metrics: dict[str, float], alphas: dict[str, list[float]] | None,
                  arch: Architecture | None, extra_meta: dict[str, Any] | None = None) -> None:
        """Record (or re-record, after a resume) a finished epoch and any meta counters in one transaction."""
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute(
                "INSERT OR REPLACE INTO epochs(epoch, metrics, alphas, arch, finished) VALUES (?, ?, ?, ?, ?)",
                (epoch, json.dumps(_clean(metrics)), json.dumps(alphas) if alphas is not None else None,
                 arch.to_json() if arch is not None else None, time.time()))
            for k, v in (extra_meta or {}).items():
                self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (k, json.dumps(v)))

    def epochs(self) -> list[EpochRecord]:
        rows = self.conn.execute("SELECT epoch, metrics, alphas, arch, finished FROM epochs ORDER BY epoch")
        return [EpochRecord(r[0], json.loads(r[1] or "{}"), json.loads(r[2]) if r[2] else None,
                            Architecture.from_json(r[3]) if r[3] else None, r[4]) for r in rows]

    def counts(self) -> dict[str, int]:
        return {s: n for s, n in self.conn.execute("SELECT status, COUNT(*) FROM trials GROUP BY status")}


def fresh_dir(root: str | Path, name: str) -> Path:
    """``root/<date-time>-<name>``, with ``-2``, ``-3`` ... appended while that path exists (not created here)."""
    from datetime import datetime

    base = Path(root) / f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{name}"
    path, k = base, 1
    while path.exists():
        k += 1
        path = Path(f"{base}-{k}")
    return path


def _row(r: tuple) -> TrialRecord:
    return TrialRecord(
        number=r[0], arch=Architecture.from_json(r[1]), status=r[2], seed=r[3], value=r[4],
        values=tuple(json.loads(r[5])) if r[5] else None, metrics=json.loads(r[6] or "{}"), error=r[7],
        fidelity=r[8], started=r[9], finished=r[10], worker=r[11], ask_event=r[12], tell_event=r[13],
        attempts=r[14])


def _clean(metrics: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in metrics.items():
        if isinstance(v, float) and v != v:  # NaN is not JSON
            out[k] = None
        else:
            out[k] = v
    return out
