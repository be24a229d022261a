"""One trial's step: ask → evaluate → score → tell, written once.

The study runs the step asynchronously (it asks, hands the job to an executor, and scores and tells as results
come back, storing each before the next ask); the tabular and hardware benchmarks run it in sequence, in memory.
Both score a result with :func:`score` and tell the strategy the :func:`observation` built from that score, so a
trial means the same thing in a run directory, in a benchmark curve and to the strategy (what was once written
three times, each building its Observation a little differently).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from .objective import Score
from .result import INFEASIBLE, OK, STOPPED, Observation, Result
from .space import Architecture

__all__ = ["Step", "observation", "score", "step", "tell"]


def score(objective: Any, result: Result) -> Score:
    """The objective's score of ``result``, with the two cases every caller treats alike: a trial stopped by the
    time budget has no value (its partial curve is kept, it ranks nowhere), and a candidate rejected at ask time
    (a constraint on a cost known before training: ``metrics["rejected"]``) is infeasible, with no value."""
    if result.status == STOPPED:
        return Score(STOPPED, None)
    if result.metrics.get("rejected"):
        return Score(INFEASIBLE, None)
    return objective.score(result)


def observation(arch: Architecture, s: Score, metrics: dict[str, Any], trial: int | None) -> Observation:
    """What the strategy is told: the value of a trial that finished (feasible or not), None for a failed or
    stopped one; the vector of a multi-objective score; feasibility from the constraints."""
    value = s.value if s.status in (OK, INFEASIBLE) else None
    return Observation(arch, value, s.values, s.status != INFEASIBLE, dict(metrics), trial)


def tell(strategy: Any, objective: Any, arch: Architecture, result: Result, trial: int | None) -> Score:
    """Score ``result`` and tell ``strategy``; return the score."""
    s = score(objective, result)
    strategy.tell(observation(arch, s, result.metrics, trial))
    return s


@dataclass
class Step:
    """One sequential step: what was asked, what the evaluator said, how it scored, and where the time went."""

    arch: Architecture
    result: Result
    score: Score
    strategy_seconds: float  # inside ask and tell
    evaluator_seconds: float  # inside evaluate


def step(strategy: Any, evaluator: Any, objective: Any, seed: int, trial: int,
         clock: Callable[[], float] = time.perf_counter) -> Step:
    """Ask, evaluate (with ``seed``), score and tell one trial, in this process."""
    t0 = clock()
    arch = strategy.ask()
    t1 = clock()
    result = evaluator.evaluate(arch, seed)
    t2 = clock()
    s = tell(strategy, objective, arch, result, trial)
    t3 = clock()
    return Step(arch, result, s, (t1 - t0) + (t3 - t2), t2 - t1)
