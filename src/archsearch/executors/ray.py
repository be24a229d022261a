"""Ray executor: one Ray actor per worker, each holding the evaluator (data loaded once), pinned to
``threads`` CPUs or one GPU. ``address=None`` starts a local Ray; ``"auto"`` or ``"HOST:PORT"`` joins a cluster
(``ray start --head`` on one machine, ``ray start --address ...`` on the others). Results are returned as soon
as any actor finishes; an actor that dies gives a failed, retryable result and is replaced; a trial that
outlives ``trial_timeout`` is stopped by killing its actor.
"""
from __future__ import annotations

import os
import time
from typing import Any

from ..errors import UserError
from ..result import Result
from .base import EXECUTORS, Executor, Job, safe_evaluate


class _Worker:
    """The actor body (wrapped with ray.remote at run time, so importing this module does not need Ray)."""

    def __init__(self, evaluator: Any, threads: int):
        os.environ["OMP_NUM_THREADS"] = str(threads)
        import torch
        torch.set_num_threads(threads)
        self.evaluator = evaluator

    def run(self, job: Job) -> Result:
        return safe_evaluate(self.evaluator.evaluate, job)

    def ping(self) -> bool:
        return True


class RayExecutor(Executor):
    def __init__(self, evaluator: Any, workers: int | None = None, threads: int | None = None,
                 trial_timeout: float | None = None, address: str | None = None, **_: Any):
        try:
            import ray
        except ImportError:
            raise UserError("the ray executor needs Ray: pip install 'archsearch[ray]'") from None
        self.ray = ray
        self._started_ray = False
        if not ray.is_initialized():
            try:
                ray.init(address=address or None, include_dashboard=False, log_to_driver=False,
                         configure_logging=False, ignore_reinit_error=True)
            except (ConnectionError, ValueError, RuntimeError) as e:
                raise UserError(f"cannot start or join Ray at {address or 'a new local cluster'}: "
                                f"{str(e).splitlines()[0]}") from None
            self._started_ray = True
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        cpus = int(resources.get("CPU", 1))
        self.use_gpu = gpus > 0
        self.capacity = max(1, workers or (gpus if self.use_gpu else cpus))
        self.threads = threads or max(1, cpus // self.capacity)
        self.trial_timeout = trial_timeout
        opts = {"num_gpus": 1} if self.use_gpu else {"num_cpus": self.threads}
        self._actor_cls = ray.remote(max_restarts=0, **opts)(_Worker)
        self._evaluator_ref = ray.put(evaluator)
        self._actors = [self._new_actor() for _ in range(self.capacity)]
        try:  # wait until every actor holds its evaluator: trial times (and timeouts) start from here
            ray.get([a.ping.remote() for a in self._actors])
        except ray.exceptions.RayError as e:
            self.close()
            raise RuntimeError(f"Ray workers failed to start: {_first_line(e)}") from None
        self._idle = list(range(self.capacity))
        self._queue: list[Job] = []
        self._running: dict[Any, tuple[int, Job, float]] = {}  # object ref -> (actor index, job, start)

    def _new_actor(self):
        return self._actor_cls.remote(self._evaluator_ref, self.threads)

    def submit(self, job: Job) -> None:
        self._queue.append(job)
        self._dispatch()

    def _dispatch(self) -> None:
        while self._queue and self._idle:
            i = self._idle.pop(0)
            job = self._queue.pop(0)
            ref = self._actors[i].run.remote(job)
            self._running[ref] = (i, job, time.monotonic())

    @property
    def in_flight(self) -> int:
        return len(self._queue) + len(self._running)

    def _replace(self, i: int) -> None:
        try:
            self.ray.kill(self._actors[i], no_restart=True)
        except Exception:  # noqa: BLE001 - already dead
            pass
        self._actors[i] = self._new_actor()

    def wait(self) -> list[tuple[Job, Result]]:
        self._dispatch()
        if not self._running:
            return []
        ray = self.ray
        while True:
            timeout = None
            if self.trial_timeout is not None:
                now = time.monotonic()
                timeout = max(0.0, min(t0 + self.trial_timeout - now for _, _, t0 in self._running.values()))
            ready, _ = ray.wait(list(self._running), num_returns=1, timeout=timeout)
            out: list[tuple[Job, Result]] = []
            for ref in ready:
                i, job, _ = self._running.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayActorError as e:
                    result = Result.failure(f"worker died: {_first_line(e)}", retryable=True)
                    self._replace(i)
                except ray.exceptions.RayError as e:
                    result = Result.failure(f"worker error: {_first_line(e)}", retryable=True)
                    self._replace(i)
                out.append((job, result))
                self._idle.append(i)
            if self.trial_timeout is not None:
                now = time.monotonic()
                for ref, (i, job, t0) in list(self._running.items()):
                    if now - t0 > self.trial_timeout:
                        del self._running[ref]
                        self._replace(i)
                        out.append((job, Result.failure(f"trial timed out after {self.trial_timeout:g} s")))
                        self._idle.append(i)
            if out:
                self._dispatch()
                return out

    def close(self) -> None:
        for a in self._actors:
            try:
                self.ray.kill(a, no_restart=True)
            except Exception:  # noqa: BLE001
                pass
        if self._started_ray:
            self.ray.shutdown()


def _first_line(e: BaseException) -> str:
    """The most telling line of a Ray error: the underlying exception if the traceback names one."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    named = [ln for ln in lines if ln.split(":")[0].endswith(("Error", "Exception"))]
    text = (named[-1] if named else lines[0]) if lines else type(e).__name__
    return text[:300]


EXECUTORS.register("ray")(RayExecutor)
