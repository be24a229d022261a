"""Local worker processes (no Ray needed): each worker holds its own copy of the evaluator, pins its threads
(or its GPU), and runs one trial at a time. Results come back as soon as any worker finishes (asynchronous
search). A worker that dies mid-trial (killed, out of memory) gives a failed, retryable result and is replaced;
a trial that outlives ``trial_timeout`` is stopped by killing its worker.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import signal
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait as wait_any
from typing import Any

from ..result import Result
from .base import EXECUTORS, Executor, Job, safe_evaluate


def default_workers() -> int:
    """One per GPU when CUDA is there, else one per CPU core."""
    try:
        import torch
        if torch.cuda.is_available():
            return torch.cuda.device_count()
    except ImportError:  # pragma: no cover
        pass
    return os.cpu_count() or 1


def describe_exit(code: int | None) -> str:
    if code is None:
        return "worker process died"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"worker process was killed ({name}{', out of memory?' if name == 'SIGKILL' else ''})"
    return f"worker process exited with code {code}"


def _die_with_parent() -> None:
    """Linux: the worker gets SIGKILL when the driver dies, so a killed search leaves no orphans behind."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


def _worker_main(conn: Connection, payload: bytes, threads: int, gpu: int | None) -> None:
    _die_with_parent()
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch
    torch.set_num_threads(threads)
    evaluator = pickle.loads(payload)
    conn.send("ready")  # trial timeouts count from here, not from the (slow) start of the process
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        conn.send(safe_evaluate(evaluator.evaluate, job))


def _context() -> Any:
    """Workers start from a fork server that has imported torch and the trainer but run nothing (on Linux): a
    pool after the first in one process starts in milliseconds instead of seconds (each spawned worker imports
    torch again). Never plain fork: a forked child of a process that has run torch can hang in its thread pool.
    The fork server, like a spawned worker, imports the caller's ``__main__`` module. It also imports
    ``torch._dynamo``, which torch imports at the first FLOP count of a process (every trial counts its model's
    FLOPs): 2.4 s of every worker's first trial here, paid once per fork server instead."""
    if "forkserver" not in mp.get_all_start_methods():  # pragma: no cover - not POSIX
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["torch", "torch._dynamo", "archsearch.evaluators.training"])
    return ctx


START_ATTEMPTS = 3  # starts of one worker slot before a start failure is the search's error


@dataclass
class _Worker:
    process: Any
    conn: Connection
    job: Job | None = None
    started: float = 0.0


class ProcessExecutor(Executor):
    """A pool of local worker processes (spawned, so CUDA and threads start clean)."""

    def __init__(self, evaluator: Any, workers: int | None = None, threads: int | None = None,
                 trial_timeout: float | None = None, **_: Any):
        self.capacity = max(1, workers or default_workers())
        self.threads = threads or max(1, (os.cpu_count() or 1) // self.capacity)
        self.trial_timeout = trial_timeout
        self._payload = pickle.dumps(evaluator)
        self._ctx = _context()
        self._gpus = self._gpu_count()
        self._queue: deque[Job] = deque()
        self._workers = [self._start(i) for i in range(self.capacity)]
        for i in range(self.capacity):
            self._ready_or_restart(i)

    @staticmethod
    def _gpu_count() -> int:
        try:
            import torch
            return torch.cuda.device_count() if torch.cuda.is_available() else 0
        except ImportError:  # pragma: no cover
            return 0

    def _start(self, index: int) -> _Worker:
        parent, child = self._ctx.Pipe()
        gpu = index % self._gpus if self._gpus else None
        proc = self._ctx.Process(target=_worker_main, args=(child, self._payload, self.threads, gpu), daemon=True,
                                 name=f"archsearch-worker-{index}")
        proc.start()
        child.close()
        return _Worker(proc, parent)

    @staticmethod
    def _await_ready(w: _Worker, timeout: float = 600.0) -> None:
        if w.conn.poll(timeout):
            try:
                if w.conn.recv() == "ready":
                    return
            except (EOFError, OSError):
                pass
        w.process.join(timeout=1)
        raise RuntimeError(f"a worker process failed to start: {describe_exit(w.process.exitcode)}")

    def _ready_or_restart(self, index: int, attempts: int = START_ATTEMPTS) -> None:
        """Wait for worker ``index``; one killed while starting (by the OOM killer, or anyone) is started again,
        and only a worker that fails ``attempts`` starts in a row (a broken evaluator) stops the search."""
        for attempt in range(attempts):
            try:
                self._await_ready(self._workers[index])
                return
            except RuntimeError:
                if attempt == attempts - 1:
                    raise
                self._workers[index].conn.close()
                self._workers[index] = self._start(index)

    def _restart(self, index: int) -> None:
        w = self._workers[index]
        if w.process.is_alive():
            w.process.kill()
        w.process.join(timeout=5)
        w.conn.close()
        self._workers[index] = self._start(index)
        self._ready_or_restart(index)

    def submit(self, job: Job) -> None:
        self._queue.append(job)
        self._dispatch()

    def _dispatch(self) -> None:
        for w in self._workers:
            if not self._queue:
                return
            if w.job is None:
                job = self._queue.popleft()
                w.conn.send(job)
                w.job, w.started = job, time.monotonic()

    @property
    def in_flight(self) -> int:
        return len(self._queue) + sum(1 for w in self._workers if w.job is not None)

    def wait(self) -> list[tuple[Job, Result]]:
        self._dispatch()
        busy = [i for i, w in enumerate(self._workers) if w.job is not None]
        if not busy:
            return []
        while True:
            timeout = None
            if self.trial_timeout is not None:
                now = time.monotonic()
                timeout = max(0.0, min(self._workers[i].started + self.trial_timeout - now for i in busy))
            handles = {}
            for i in busy:
                handles[self._workers[i].conn] = i
                handles[self._workers[i].process.sentinel] = i
            ready = wait_any(list(handles), timeout=timeout)
            done: dict[int, tuple[Job, Result]] = {}
            for h in ready:
                i = handles[h]
                if i in done:
                    continue
                w = self._workers[i]
                try:
                    if w.conn.poll():
                        done[i] = (w.job, w.conn.recv())
                        w.job = None
                        continue
                except (EOFError, OSError):
                    pass
                if not w.process.is_alive():
                    w.process.join(timeout=1)
                    done[i] = (w.job, Result.failure(describe_exit(w.process.exitcode), retryable=True))
                    self._restart(i)
            if self.trial_timeout is not None:
                now = time.monotonic()
                for i in busy:
                    w = self._workers[i]
                    if i not in done and now - w.started > self.trial_timeout:
                        done[i] = (w.job, Result.failure(f"trial timed out after {self.trial_timeout:g} s"))
                        self._restart(i)
            if done:
                self._dispatch()
                return list(done.values())

    def close(self) -> None:
        for w in self._workers:
            try:
                w.conn.send(None)
            except (OSError, BrokenPipeError):
                pass
        deadline = time.monotonic() + 5
        for w in self._workers:
            w.process.join(timeout=max(0.0, deadline - time.monotonic()))
            if w.process.is_alive():
                w.process.kill()
                w.process.join(timeout=1)
            w.conn.close()


EXECUTORS.register("process")(ProcessExecutor)
