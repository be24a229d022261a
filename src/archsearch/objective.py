"""Objectives: turn an evaluator's Result into what a strategy maximises.

The foundation provides a single metric (maximised or minimised). Rewards that combine metrics (MnasNet),
constraints and multi-objective vectors plug in here with the same ``score`` contract.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .errors import UserError
from .result import INFEASIBLE, OK, Result


@dataclass(frozen=True)
class Score:
    status: str  # ok / failed / infeasible
    value: float | None  # scalar to maximise
    values: tuple[float, ...] | None = None  # vector to maximise (multi-objective)

    @property
    def feasible(self) -> bool:
        return self.status != INFEASIBLE


@dataclass(frozen=True)
class MetricObjective:
    """Maximise (or minimise) one metric of the result, e.g. ``val_accuracy``."""

    metric: str = "val_accuracy"
    maximize: bool = True

    def score(self, result: Result) -> Score:
        if not result.ok:
            return Score(result.status, None)
        v = result.metrics.get(self.metric)
        if v is None or not isinstance(v, (int, float)) or math.isnan(v):
            return Score("failed", None)
        return Score(OK, float(v) if self.maximize else -float(v))

    def config(self) -> dict[str, Any]:
        return {"kind": "metric", "metric": self.metric, "maximize": self.maximize}

    def describe(self) -> str:
        return f"{'maximise' if self.maximize else 'minimise'} {self.metric}"


def parse_objective(text: str | None) -> MetricObjective:
    """'val_accuracy' (maximised), or 'min:latency_ms' / 'max:metric'."""
    if not text:
        return MetricObjective()
    t = text.strip()
    direction, _, name = t.partition(":") if ":" in t else ("max", "", t)
    if direction not in ("max", "min") or not name.replace("_", "").isalnum():
        raise UserError(f"bad objective {text!r}: use a metric name such as val_accuracy, or min:NAME / max:NAME")
    return MetricObjective(name, direction == "max")


def objective_from_config(cfg: dict[str, Any]) -> MetricObjective:
    if cfg.get("kind", "metric") != "metric":
        raise UserError(f"unknown objective kind {cfg.get('kind')!r}")
    return MetricObjective(cfg["metric"], cfg.get("maximize", True))
