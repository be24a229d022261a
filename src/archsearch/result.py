"""Records passed between evaluators, strategies and the run store."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .space import Architecture

OK, FAILED, INFEASIBLE, STOPPED = "ok", "failed", "infeasible", "stopped"  # stopped: by the time budget


@dataclass
class Result:
    """What an evaluator says about one architecture. Accuracies are in percent.

    ``metrics`` holds val_accuracy (the search signal), test_accuracy (reporting only), params, flops,
    latency_ms, train_seconds ... ``state_dict`` optionally carries trained weights back to the driver (never
    stored in the database; the study saves the best one as best.pt).
    """

    metrics: dict[str, float] = field(default_factory=dict)
    status: str = OK
    error: str | None = None
    state_dict: dict[str, Any] | None = field(default=None, repr=False)
    cost_seconds: float | None = None  # simulated or measured cost charged to a time budget
    retryable: bool = False  # the failure came from the infrastructure (worker died), not from the architecture
    curve: list[dict[str, float]] | None = field(default=None, repr=False)  # per epoch: epoch, val_accuracy, ...

    @property
    def ok(self) -> bool:
        return self.status == OK

    @classmethod
    def failure(cls, error: str, retryable: bool = False, **metrics: float) -> "Result":
        return cls(metrics=dict(metrics), status=FAILED, error=error, retryable=retryable)


@dataclass(frozen=True)
class Observation:
    """What a strategy is told about one architecture it asked for (or that was evaluated for it).

    ``value`` is the scalar to maximise (None when the trial failed); ``values`` the vector for
    multi-objective search (every component maximised); ``feasible`` False when a constraint is violated.
    """

    arch: Architecture
    value: float | None
    values: tuple[float, ...] | None = None
    feasible: bool = True
    metrics: dict[str, float] = field(default_factory=dict)
    trial: int | None = None

    @property
    def failed(self) -> bool:
        return self.value is None or (isinstance(self.value, float) and math.isnan(self.value))
