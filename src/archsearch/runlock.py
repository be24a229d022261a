"""One run directory, one writer: an advisory lock on ``RUN_DIR/run.lock`` with a heartbeat.

``fcntl.flock`` on an open file: the kernel releases it when the holding process dies, even by SIGKILL, so a
lock left by a crashed search is taken over at once and ``--resume`` needs no manual cleanup. The file's JSON
body (pid, host, started, heartbeat, refreshed every few seconds by a daemon thread) names the holder in the
one-line refusal a second writer gets. Readers (``show``, ``report``, the dashboard) never take it: SQLite's
WAL lets them read a live run.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
import time
from pathlib import Path

from .errors import UserError

LOCK_NAME = "run.lock"
HEARTBEAT_SECONDS = 5.0
_HELD: dict[str, "RunLock"] = {}  # this process's locks, by directory (re-acquiring is not a deadlock)
_GUARD = threading.Lock()


class RunLock:
    """A held lock; ``release()`` (or leaving the ``with`` block) gives it up."""

    def __init__(self, run_dir: Path, handle):
        self.run_dir, self._handle, self._count = run_dir, handle, 1
        self._stop = threading.Event()
        self.started = time.time()
        self._write()
        self._thread = threading.Thread(target=self._beat, name=f"archsearch-lock-{run_dir.name}", daemon=True)
        self._thread.start()

    def _write(self) -> None:
        body = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": self.started,
                           "heartbeat": time.time()})
        try:
            self._handle.seek(0)
            self._handle.truncate()
            self._handle.write(body)
            self._handle.flush()
        except (OSError, ValueError):
            pass

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            self._write()

    def release(self) -> None:
        with _GUARD:
            self._count -= 1
            if self._count > 0 or self._handle is None:
                return
            _HELD.pop(str(self.run_dir.resolve()), None)
            self._stop.set()
            try:
                fcntl.flock(self._handle, fcntl.LOCK_UN)
                self._handle.close()
            except (OSError, ValueError):
                pass
            self._handle = None

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def holder(run_dir: str | Path) -> dict | None:
    """What the lock file says of its holder (pid, host, started, heartbeat), or None."""
    try:
        return json.loads((Path(run_dir) / LOCK_NAME).read_text() or "null")
    except (OSError, ValueError):
        return None


def acquire(run_dir: str | Path) -> RunLock:
    """Take the run directory's lock, or raise a one-line UserError naming the process that holds it."""
    run_dir = Path(run_dir)
    key = str(run_dir.resolve())
    with _GUARD:
        held = _HELD.get(key)
        if held is not None and held._handle is not None:
            held._count += 1
            return held
        run_dir.mkdir(parents=True, exist_ok=True)
        handle = open(run_dir / LOCK_NAME, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            h = holder(run_dir) or {}
            age = f"heartbeat {time.time() - h['heartbeat']:.0f}s ago" if "heartbeat" in h else "no heartbeat yet"
            raise UserError(f"{run_dir} is in use by process {h.get('pid', '?')} on {h.get('host', '?')} ({age}); "
                            "wait for it to finish or stop it, then resume") from None
        lock = RunLock(run_dir, handle)
        _HELD[key] = lock
        return lock
