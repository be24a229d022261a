"""SQLite run store: one database file per run directory (WAL mode), single writer (the driver).

Every finished trial is committed before the next one is asked, so a killed search loses at most the trials
that were running. Tables:

* ``meta``   key/value JSON: the study's configuration (space, strategy, evaluator, objective, budget, seed)
  and its counters (elapsed seconds).
* ``trials`` one row per asked architecture: number (ask order), architecture JSON, status
  (running/ok/failed/infeasible), value (the objective, maximised), values (JSON vector for multi-objective),
  metrics JSON, error, seed, fidelity, start/end wall times, worker, ask/tell event numbers (for exact replay).
* ``curves`` the learning curve of each trial: one row per trained epoch (val_accuracy, val_loss, train_loss,
  seconds), written with the rung or trial result that carries it.
* ``rungs``  one row per rung a trial finished under a multi-fidelity scheduler (fidelity = epochs, the value
  and its tie-break), in the order they happened: the scheduler is rebuilt from them on resume.
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

from .errors import UserError
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
    attempts INTEGER NOT NULL DEFAULT 1,
    bracket INTEGER
);
CREATE TABLE IF NOT EXISTS curves (
    trial INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    metrics TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (trial, epoch)
);
CREATE TABLE IF NOT EXISTS rungs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    trial INTEGER NOT NULL,
    fidelity REAL NOT NULL,
    value REAL,
    tiebreak REAL,
    metrics TEXT NOT NULL DEFAULT '{}',
    UNIQUE (trial, fidelity)
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


#: The run database's format: 1 = before multi-fidelity scheduling (no ``bracket`` column, no ``format`` key; read
#: and migrated), 2 = now. A run written by a newer archsearch (a larger number) is refused in one line.
FORMAT_VERSION = 2


class RunStore:
    """The run's database. One writer (the driver, holding the run lock); ``read_only`` readers (show, report,
    the dashboard) may open a live run: WAL mode lets them read while it is written."""

    def __init__(self, run_dir: str | Path, create: bool = False, read_only: bool = False):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / DB_NAME
        self.read_only = read_only
        if create:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        elif not self.path.exists():
            raise FileNotFoundError(f"{self.run_dir} is not an archsearch run directory (no {DB_NAME})")
        try:
            if read_only:
                self.conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=30,
                                            isolation_level=None)
                self.conn.execute("SELECT COUNT(*) FROM meta").fetchone()
                self._check_format()
                return
            self.conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.executescript(_SCHEMA)
            cols = {row[1] for row in self.conn.execute("PRAGMA table_info(trials)")}
            if "bracket" not in cols:  # a run written before schedulers
                self.conn.execute("ALTER TABLE trials ADD COLUMN bracket INTEGER")
            self._check_format()
            self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('format', ?)",
                              (json.dumps(FORMAT_VERSION),))
        except sqlite3.DatabaseError as e:
            raise UserError(f"{self.path} is damaged or not an archsearch run database ({e})") from None

    def _check_format(self) -> None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
        try:
            found = 1 if row is None else int(json.loads(row[0]))
        except (TypeError, ValueError):
            found = None
        if found is None or found > FORMAT_VERSION:
            self.conn.close()
            raise UserError(f"{self.run_dir} was written by a newer archsearch (run format {row[0]}; this version "
                            f"reads formats up to {FORMAT_VERSION}): upgrade archsearch to open it")

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
                  fidelity: float | None = None, worker: str | None = None, bracket: int | None = None) -> None:
        self.conn.execute(
            "INSERT INTO trials(number, arch, status, seed, fidelity, started, worker, ask_event, bracket) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (number, arch.to_json(), RUNNING, seed, fidelity, time.time(), worker, ask_event, bracket))

    def brackets(self) -> dict[int, int]:
        """trial -> the scheduler bracket (or round) it started in."""
        return {t: b for t, b in self._rows("SELECT number, bracket FROM trials WHERE bracket IS NOT NULL")}

    def restart_trial(self, number: int, note: str | None = None) -> None:
        """A trial re-queued after a crash or a retry: running again from now (``note``: why, kept in error)."""
        self.conn.execute("UPDATE trials SET status = ?, started = ?, attempts = attempts + 1, error = ? "
                          "WHERE number = ?", (RUNNING, time.time(), note, number))

    def finish_trial(self, number: int, status: str, value: float | None, values: tuple[float, ...] | None,
                     metrics: dict[str, float], error: str | None, tell_event: int | None,
                     extra_meta: dict[str, Any] | None = None, curve: list[dict[str, Any]] | None = None,
                     rung: tuple[float, float | None] | None = None, fidelity: float | None = None) -> None:
        """Record a finished trial or rung (and any meta counters, its learning curve ``curve`` and its rung
        ``(fidelity, tiebreak)``) in one committed transaction. ``tell_event`` None keeps the stored one (a
        promoted trial was told once, at its first rung)."""
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute(
                'UPDATE trials SET status = ?, value = ?, "values" = ?, metrics = ?, error = ?, finished = ?, '
                "tell_event = COALESCE(?, tell_event), fidelity = COALESCE(?, fidelity) WHERE number = ?",
                (status, value, json.dumps(list(values)) if values is not None else None,
                 json.dumps(_clean(metrics)), error, time.time(), tell_event, fidelity, number))
            for row in curve or []:
                self.conn.execute("INSERT OR REPLACE INTO curves(trial, epoch, metrics) VALUES (?, ?, ?)",
                                  (number, int(row["epoch"]), json.dumps(_clean(row))))
            if rung is not None:
                self.conn.execute("INSERT OR REPLACE INTO rungs(trial, fidelity, value, tiebreak, metrics) "
                                  "VALUES (?, ?, ?, ?, ?)", (number, rung[0], value, rung[1],
                                                             json.dumps(_clean(metrics))))
            for k, v in (extra_meta or {}).items():
                self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (k, json.dumps(v)))

    def set_tell_event(self, number: int, event: int) -> None:
        """The strategy was told ``number``'s stored result at ``event`` (results told in ask order: later than
        they were stored)."""
        self.conn.execute("UPDATE trials SET tell_event = ? WHERE number = ?", (event, number))

    def mark_started(self, number: int) -> None:
        """A trial asked ahead starts now (it waited for a worker since it was asked)."""
        self.conn.execute("UPDATE trials SET started = ? WHERE number = ?", (time.time(), number))

    def discard_trial(self, number: int) -> None:
        """Forget a trial that was asked but never started (the budget ended while it waited for a worker)."""
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute("DELETE FROM curves WHERE trial = ?", (number,))
            self.conn.execute("DELETE FROM trials WHERE number = ? AND finished IS NULL", (number,))

    def promote_trial(self, number: int, fidelity: float) -> None:
        """A paused trial continues to ``fidelity`` (from its checkpoint)."""
        self.conn.execute("UPDATE trials SET status = ?, fidelity = ? WHERE number = ?", (RUNNING, fidelity, number))

    def _rows(self, query: str) -> list[tuple]:
        """Rows of a table a run written by an older version (read-only: not migrated) may not have."""
        try:
            return list(self.conn.execute(query))
        except sqlite3.OperationalError as e:
            if "no such" in str(e):
                return []
            raise

    def curves(self) -> dict[int, list[dict[str, Any]]]:
        """trial -> its learning curve (one dict per epoch, in order)."""
        out: dict[int, list[dict[str, Any]]] = {}
        for t, m in self._rows("SELECT trial, metrics FROM curves ORDER BY trial, epoch"):
            out.setdefault(t, []).append(json.loads(m))
        return out

    def rungs(self) -> list[tuple[int, float, float | None, float | None, dict[str, Any]]]:
        """(trial, fidelity, value, tiebreak, metrics) of every finished rung, in the order they finished."""
        return [(t, f, v, tb, json.loads(m)) for t, f, v, tb, m in
                self._rows("SELECT trial, fidelity, value, tiebreak, metrics FROM rungs ORDER BY seq")]

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
                  arch: Architecture | None, extra_meta: dict[str, Any] | None = None, keep: bool = False) -> None:
        """Record a finished epoch and any meta counters in one transaction; ``keep``: leave an epoch already
        recorded as it is (a resume re-adds the checkpoint's last epoch only in case it never reached the db)."""
        verb = "INSERT OR IGNORE" if keep else "INSERT OR REPLACE"
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute(
                f"{verb} INTO epochs(epoch, metrics, alphas, arch, finished) VALUES (?, ?, ?, ?, ?)",
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
