"""The executor interface (:class:`Executor`, :class:`Job`), the inline executor and the registry."""
from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Any, Callable

from ..registry import Registry
from ..result import Result
from ..space import Architecture

EvaluateFn = Callable[[Architecture, int, float | None], Result]


@dataclass(frozen=True)
class Job:
    trial: int
    arch: Architecture
    seed: int
    fidelity: float | None = None
    checkpoint: str | None = None  # continue from / save to this file (multi-fidelity: a promoted trial)
    deadline: float | None = None  # time.time() when the run's budget ends (checked inside epochs)
    horizon: float | None = None  # the largest fidelity of the schedule (the LR schedule's length)

    def options(self) -> dict[str, Any]:
        """The evaluator keywords this job sets (only evaluators declaring ``resumable`` get any)."""
        return {k: v for k, v in (("checkpoint", self.checkpoint), ("deadline", self.deadline),
                                  ("horizon", self.horizon)) if v is not None}


class Executor:
    capacity: int = 1

    def submit(self, job: Job) -> None:
        raise NotImplementedError

    def wait(self) -> list[tuple[Job, Result]]:
        raise NotImplementedError

    @property
    def in_flight(self) -> int:
        raise NotImplementedError

    def close(self) -> None:
        pass


def safe_evaluate(evaluate: EvaluateFn, job: Job) -> Result:
    """Run one evaluation; any exception becomes a failed Result (a crashing trial never loses the run)."""
    try:
        result = evaluate(job.arch, job.seed, job.fidelity, **job.options())
        if not isinstance(result, Result):
            return Result.failure(f"evaluator returned {type(result).__name__}, not a Result")
        return result
    except Exception as e:  # noqa: BLE001 - reported as a failed trial
        tb = traceback.extract_tb(e.__traceback__)
        where = f" ({tb[-1].filename.rsplit('/', 1)[-1]}:{tb[-1].lineno})" if tb else ""
        return Result.failure(f"{type(e).__name__}: {e}{where}")


class InlineExecutor(Executor):
    """Evaluate in the calling process, one job at a time."""

    def __init__(self, evaluator: Any, workers: int = 1, threads: int | None = None, **_: Any):
        self.evaluate = evaluator.evaluate
        self.capacity = 1
        self.threads = threads
        self._queue: list[Job] = []

    def submit(self, job: Job) -> None:
        self._queue.append(job)

    def wait(self) -> list[tuple[Job, Result]]:
        if not self._queue:
            return []
        job = self._queue.pop(0)
        if self.threads is None:
            return [(job, safe_evaluate(self.evaluate, job))]
        import torch
        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            return [(job, safe_evaluate(self.evaluate, job))]
        finally:
            torch.set_num_threads(before)

    @property
    def in_flight(self) -> int:
        return len(self._queue)


EXECUTORS: Registry[Callable[..., Executor]] = Registry("executor")
EXECUTORS.register("inline")(InlineExecutor)
