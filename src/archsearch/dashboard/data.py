"""Read-only queries over run directories for the dashboard.

Nothing here writes to a run: a database is opened with ``mode=ro`` while its write-ahead log exists (a writer is
at work, or crashed: its ``-wal``/``-shm`` files are already there), and with ``immutable=1`` when it does not
(a finished run: plain ``mode=ro`` would create ``-wal``/``-shm`` files in the run directory). The run lock is
never taken. Each run's rows are cached and refreshed only when the database or its log changes (size or
mtime), and then incrementally (new trials, running ones, recently finished ones), so polling a 10,000-trial
run costs a ``stat`` and a small query. Every trial row carries a revision number: a client asks for the rows
changed ``since`` the revision it last saw.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..storage import DB_NAME

#: Columns of a trial row, as read (the order of ``_TRIAL_SQL``).
TRIAL_COLUMNS = ("number", "arch", "status", "value", "values", "metrics", "error", "fidelity", "started",
                 "finished", "attempts", "seed", "worker")
_TRIAL_SQL = ('SELECT number, arch, status, value, "values", metrics, error, fidelity, started, finished, attempts, '
              "seed, worker FROM trials")
FULL_RELOAD_SECONDS = 30.0  # a full re-read now and then catches what an incremental read cannot see


class RunNotFound(Exception):
    """No run with that identifier inside the dashboard's folder (HTTP 404)."""


class OutsideRoot(Exception):
    """An identifier that resolves outside the dashboard's folder (HTTP 403)."""


def connect_read_only(run_dir: Path) -> sqlite3.Connection:
    """A read-only connection that leaves the run directory exactly as it was (see the module docstring)."""
    db = run_dir / DB_NAME
    live = db.with_name(DB_NAME + "-wal").exists()
    uri = db.resolve().as_uri() + ("?mode=ro" if live else "?mode=ro&immutable=1")
    return sqlite3.connect(uri, uri=True, timeout=5, isolation_level=None, check_same_thread=False)


def stat_key(run_dir: Path) -> tuple:
    """What changes whenever the run's database does: size and mtime of the file and of its log."""
    out: list[Any] = []
    for name in (DB_NAME, DB_NAME + "-wal"):
        try:
            st = (run_dir / name).stat()
            out += [st.st_size, st.st_mtime_ns]
        except OSError:
            out += [None, None]
    return tuple(out)


def find_runs(root: Path, depth: int = 2) -> list[Path]:
    """Run directories at or below ``root`` (the folder itself, or its sub-folders to ``depth``), sorted."""
    if (root / DB_NAME).is_file():
        return [root]
    found: list[Path] = []
    level = [root]
    for _ in range(depth):
        nxt: list[Path] = []
        for folder in level:
            try:
                children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
            except OSError:
                continue
            for child in children:
                if (child / DB_NAME).is_file():
                    found.append(child)
                else:
                    nxt.append(child)
        level = nxt
    return sorted(found)


def resolve_run(root: Path, run_id: str) -> Path:
    """The run directory ``run_id`` names (a path relative to ``root``, ``.`` for root itself); refused when it
    leaves ``root`` (``..``, an absolute path, a symlink out) or is not a run."""
    root = root.resolve()
    if not run_id or "\x00" in run_id or run_id.startswith(("/", "\\")) or ".." in Path(run_id).parts:
        raise OutsideRoot(f"refused run identifier {run_id!r}")
    path = (root / run_id).resolve()
    if path != root and root not in path.parents:
        raise OutsideRoot(f"refused run identifier {run_id!r}: outside the dashboard's folder")
    if not (path / DB_NAME).is_file():
        raise RunNotFound(f"no run {run_id!r}")
    return path


@dataclass
class RunCache:
    """One run's meta, trials (with revisions), curves and epochs, re-read when the database changes."""

    path: Path
    key: tuple | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    rows: dict[int, tuple] = field(default_factory=dict)
    rev: dict[int, int] = field(default_factory=dict)
    seq: int = 0
    error: str | None = None
    curves: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    rungs: list[tuple] = field(default_factory=list)
    epochs: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    lock_info: dict[str, Any] | None = None
    compact: dict[int, tuple[int, list]] = field(default_factory=dict)  # number -> (rev, the row as sent)
    metric_keys: list[str] = field(default_factory=list)  # numeric metrics seen, in order (only grows)
    _extras_key: tuple | None = None
    _full_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    views_lock: threading.RLock = field(default_factory=threading.RLock)  # views.py's caches (compact, derived)
    _derived: dict[str, tuple[int, Any]] = field(default_factory=dict)

    def refresh(self) -> "RunCache":
        """Re-read what changed since the last call (nothing when the files did not change)."""
        with self._lock:
            key = stat_key(self.path)
            self.lock_info = _lock_info(self.path)
            if key == self.key and time.time() - self._full_at < FULL_RELOAD_SECONDS:
                return self
            try:
                self._read(full=self.key is None or time.time() - self._full_at >= FULL_RELOAD_SECONDS)
                self.key, self.error = key, None
            except (sqlite3.DatabaseError, ValueError, TypeError, KeyError) as e:
                self.error = f"the run database is damaged or unreadable ({type(e).__name__}: {e})"
                self.key = key
            return self

    def _read(self, full: bool) -> None:
        conn = connect_read_only(self.path)
        try:
            conn.execute("BEGIN")  # one consistent snapshot for every query below
            meta = {k: json.loads(v) for k, v in conn.execute("SELECT key, value FROM meta")}
            counts = {s: n for s, n in conn.execute("SELECT status, COUNT(*) FROM trials GROUP BY status")}
            if not full:
                known_running = [n for n, r in self.rows.items() if r[2] == "running"]
                last = max((r[9] or 0.0 for r in self.rows.values()), default=0.0)
                q = (_TRIAL_SQL + " WHERE number > ? OR status = 'running' OR finished >= ?"
                     + (f" OR number IN ({','.join('?' * len(known_running))})" if known_running else ""))
                self._merge(conn.execute(q, (max(self.rows, default=-1), last - 2.0, *known_running)))
                if _counts(self.rows) != counts:
                    full = True  # something the incremental query could not see (a restart, a promotion)
            if full:
                self._merge(conn.execute(_TRIAL_SQL))
                self._full_at = time.time()
            self.meta, self.counts = meta, counts
            conn.execute("COMMIT")
        finally:
            conn.close()

    def _merge(self, rows) -> None:
        for r in rows:
            r = tuple(r)
            if self.rows.get(r[0]) != r:
                self.seq += 1
                self.rows[r[0]], self.rev[r[0]] = r, self.seq

    def extras(self) -> "RunCache":
        """Also read the learning curves, rungs and one-shot epochs (only when asked: most views need none)."""
        self.refresh()
        with self._lock:
            if self._extras_key == self.key:
                return self
            conn = connect_read_only(self.path)
            try:
                conn.execute("BEGIN")
                curves: dict[int, list[dict[str, Any]]] = {}
                for t, m in _rows(conn, "SELECT trial, metrics FROM curves ORDER BY trial, epoch"):
                    curves.setdefault(t, []).append(json.loads(m))
                self.curves = curves
                self.rungs = _rows(conn, "SELECT trial, fidelity, value FROM rungs ORDER BY seq")
                self.epochs = [{"epoch": e, "metrics": json.loads(m or "{}"), "alphas": json.loads(a) if a else None,
                                "arch": json.loads(arch) if arch else None, "finished": f}
                               for e, m, a, arch, f in _rows(conn, "SELECT epoch, metrics, alphas, arch, finished "
                                                                   "FROM epochs ORDER BY epoch")]
                conn.execute("COMMIT")
            except (sqlite3.DatabaseError, ValueError) as e:
                self.error = f"the run database is damaged or unreadable ({type(e).__name__}: {e})"
            finally:
                conn.close()
            self._extras_key = self.key
            return self

    def derived(self, name: str, compute: Callable[["RunCache"], Any]) -> Any:
        """``compute(self)``, remembered until the trials change."""
        with self.views_lock:
            return self._derived_locked(name, compute)

    def _derived_locked(self, name: str, compute: Callable[["RunCache"], Any]) -> Any:
        hit = self._derived.get(name)
        stamp = hash((self.seq, self._extras_key))
        if hit is not None and hit[0] == stamp:
            return hit[1]
        value = compute(self)
        self._derived[name] = (stamp, value)
        return value


def _rows(conn: sqlite3.Connection, query: str) -> list[tuple]:
    """Rows of a table an older run may not have."""
    try:
        return [tuple(r) for r in conn.execute(query)]
    except sqlite3.OperationalError as e:
        if "no such" in str(e):
            return []
        raise


def _counts(rows: dict[int, tuple]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows.values():
        out[r[2]] = out.get(r[2], 0) + 1
    return out


def _lock_info(run_dir: Path) -> dict[str, Any] | None:
    """What the run lock's file says of its holder (read as a plain file; the lock itself is never taken)."""
    try:
        with open(run_dir / "run.lock", "r", encoding="utf-8") as f:
            doc = json.loads(f.read() or "null")
        return doc if isinstance(doc, dict) else None
    except (OSError, ValueError):
        return None


class RunFolder:
    """The dashboard's folder: its runs, each with a cache, found again on every listing (new runs appear)."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        self._caches: dict[Path, RunCache] = {}
        self._lock = threading.Lock()

    def run_id(self, path: Path) -> str:
        rel = path.relative_to(self.root).as_posix()
        return rel if rel else "."

    def runs(self) -> list[tuple[str, RunCache]]:
        return [(self.run_id(p), self.cache(p)) for p in find_runs(self.root)]

    def get(self, run_id: str) -> RunCache:
        return self.cache(resolve_run(self.root, run_id)).refresh()

    def cache(self, path: Path) -> RunCache:
        with self._lock:
            c = self._caches.get(path)
            if c is None:
                c = self._caches[path] = RunCache(path)
            return c
