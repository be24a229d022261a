"""Objectives: turn an evaluator's Result into what a strategy maximises.

* :class:`MetricObjective`: one metric, maximised or minimised (``val_accuracy``, ``min:latency_ms``).
* :class:`MnasNetObjective`: MnasNet's reward ACC x (LAT / T)^w (Tan et al., CVPR 2019), soft or hard.
* :class:`ParetoObjective`: a vector of metrics for multi-objective search; ``Score.values`` holds it (every
  component maximised, minimised metrics negated) and ``Score.value`` its first component, so that
  single-objective strategies still have a scalar to climb.
* :class:`ConstrainedObjective`: any of these under hard constraints (``latency_ms<=5``, ``params<=1M``); a
  violating architecture is scored ``infeasible`` (recorded with its values, never the best).

Every objective has ``score(result) -> Score``, ``config()`` (JSON, stored in the run for resume; rebuilt by
:func:`objective_from_config`), ``describe()`` and ``metrics()`` (the metrics it reads, so that the caller can
make the evaluator measure them). The metric-generic parts live in :mod:`archsearch.hardware.objectives`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Protocol, Sequence

from .errors import UserError
from .hardware.objectives import (HARD_ALPHA, HARD_BETA, SOFT_W, Constraint, Goal, mnas_reward, parse_constraint,
    parse_goal, parse_goals)
from .result import FAILED, INFEASIBLE, OK, Result

__all__ = ["Score", "Objective", "MetricObjective", "MnasNetObjective", "ParetoObjective", "ConstrainedObjective",
           "parse_objective", "objective_from_config"]


@dataclass(frozen=True)
class Score:
    status: str  # ok / failed / infeasible
    value: float | None  # scalar to maximise
    values: tuple[float, ...] | None = None  # vector to maximise (multi-objective)

    @property
    def feasible(self) -> bool:
        return self.status != INFEASIBLE


class Objective(Protocol):
    def score(self, result: Result) -> Score: ...

    def config(self) -> dict[str, Any]: ...

    def describe(self) -> str: ...

    def metrics(self) -> tuple[str, ...]: ...


def _metric(result: Result, name: str) -> float | None:
    v = result.metrics.get(name)
    if v is None or not isinstance(v, (int, float)) or math.isnan(v):
        return None
    return float(v)


@dataclass(frozen=True)
class MetricObjective:
    """Maximise (or minimise) one metric of the result, e.g. ``val_accuracy``."""

    metric: str = "val_accuracy"
    maximize: bool = True

    def score(self, result: Result) -> Score:
        if not result.ok:
            return Score(result.status, None)
        v = _metric(result, self.metric)
        if v is None:
            return Score(FAILED, None)
        return Score(OK, v if self.maximize else -v)

    def config(self) -> dict[str, Any]:
        return {"kind": "metric", "metric": self.metric, "maximize": self.maximize}

    def describe(self) -> str:
        return f"{'maximise' if self.maximize else 'minimise'} {self.metric}"

    def metrics(self) -> tuple[str, ...]:
        return (self.metric,)


@dataclass(frozen=True)
class MnasNetObjective:
    """MnasNet's reward ``ACC x (LAT / target)^w``, w = ``alpha`` at or under the target, ``beta`` above it.
    Soft (the paper's choice): alpha = beta = -0.07; hard: alpha = 0, beta = -1. ``latency`` may name any cost
    metric (``latency_ms``, ``predicted_latency_ms``, ``flops`` ...), ``target`` is in its unit."""

    target: float
    alpha: float = SOFT_W
    beta: float = SOFT_W
    accuracy: str = "val_accuracy"
    latency: str = "latency_ms"

    def __post_init__(self):
        if not self.target > 0:
            raise UserError(f"the MnasNet target must be positive, got {self.target}")

    def score(self, result: Result) -> Score:
        if not result.ok:
            return Score(result.status, None)
        acc, lat = _metric(result, self.accuracy), _metric(result, self.latency)
        if acc is None or lat is None or lat <= 0:
            return Score(FAILED, None)
        return Score(OK, mnas_reward(acc, lat, self.target, self.alpha, self.beta))

    def config(self) -> dict[str, Any]:
        return {"kind": "mnasnet", "target": self.target, "alpha": self.alpha, "beta": self.beta,
                "accuracy": self.accuracy, "latency": self.latency}

    def describe(self) -> str:
        w = f"w={self.alpha:g}" if self.alpha == self.beta else f"w={self.alpha:g} (<=T) / {self.beta:g} (>T)"
        return f"MnasNet reward {self.accuracy} x ({self.latency}/{self.target:g})^w, {w}"

    def metrics(self) -> tuple[str, ...]:
        return (self.accuracy, self.latency)


@dataclass(frozen=True)
class ParetoObjective:
    """Several metrics at once; ``values`` is the vector (maximised), ``value`` its first component."""

    goals: tuple[Goal, ...]

    def __post_init__(self):
        if len(self.goals) < 2:
            raise UserError("a Pareto objective needs at least two metrics")

    def score(self, result: Result) -> Score:
        if not result.ok:
            return Score(result.status, None)
        vals = []
        for g in self.goals:
            v = _metric(result, g.metric)
            if v is None:
                return Score(FAILED, None)
            vals.append(v * g.sign())
        return Score(OK, vals[0], tuple(vals))

    def config(self) -> dict[str, Any]:
        return {"kind": "pareto", "goals": [str(g) for g in self.goals]}

    def describe(self) -> str:
        return "Pareto front of " + ", ".join(f"{'max' if g.maximize else 'min'} {g.metric}" for g in self.goals)

    def metrics(self) -> tuple[str, ...]:
        return tuple(g.metric for g in self.goals)


@dataclass(frozen=True)
class ConstrainedObjective:
    """``base`` under hard constraints. A result that violates one is ``infeasible`` with the base's value and
    values kept (strategies learn from it, reports show it); a result missing a constrained metric fails."""

    base: Any
    constraints: tuple[Constraint, ...]

    def score(self, result: Result) -> Score:
        s = self.base.score(result)
        if s.status != OK:
            return s
        verdicts = [c.satisfied(result.metrics) for c in self.constraints]
        if any(v is None for v in verdicts):
            return Score(FAILED, None)
        return s if all(verdicts) else Score(INFEASIBLE, s.value, s.values)

    def violation(self, metrics: Mapping[str, float]) -> float:
        """Sum of the relative violations (0 when feasible)."""
        return sum(c.violation(metrics) for c in self.constraints)

    def config(self) -> dict[str, Any]:
        return {"kind": "constrained", "base": self.base.config(), "constraints": [c.spec() for c in self.constraints]}

    def describe(self) -> str:
        return f"{self.base.describe()} subject to {', '.join(map(str, self.constraints))}"

    def metrics(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.base.metrics(), *(c.metric for c in self.constraints))))


def _parse_mnasnet(spec: str, text: str):
    """``mnasnet:5``, ``mnasnet:5,hard``, ``mnasnet:target=5,w=-0.1,latency=predicted_latency_ms``."""
    kw: dict[str, Any] = {}
    for item in [t.strip() for t in spec.split(",") if t.strip()]:
        key, sep, val = item.partition("=")
        try:
            if not sep and key == "hard":
                kw["alpha"], kw["beta"] = HARD_ALPHA, HARD_BETA
            elif not sep and key == "soft":
                kw["alpha"] = kw["beta"] = SOFT_W
            elif not sep:
                kw["target"] = float(key)
            elif key in ("target", "alpha", "beta"):
                kw[key] = float(val)
            elif key == "w":
                kw["alpha"] = kw["beta"] = float(val)
            elif key in ("latency", "accuracy"):
                kw[key] = parse_goal(val).metric
            else:
                raise UserError(f"bad objective {text!r}: unknown MnasNet setting {key!r} "
                                f"(use target, w, alpha, beta, hard, latency, accuracy)")
        except ValueError:
            raise UserError(f"bad objective {text!r}: {item!r} is not a number") from None
    if "target" not in kw:
        raise UserError(f"bad objective {text!r}: give the latency target, e.g. mnasnet:5 (ms)")
    return MnasNetObjective(**kw)


def reference_point(objective: Any, given: str | Sequence[Any], oriented: bool = False) -> list[float]:
    """A hypervolume reference point for a Pareto objective, one number per metric in the metrics' order: text
    (``"70,20"``, ``--reference-point``) or a list, in the metrics' own units; returned in the maximised
    orientation strategies see (a minimised metric negated). ``oriented``: ``given`` is in that orientation
    already (a strategy's ``ref_point`` option), only checked."""
    base = getattr(objective, "base", objective)
    if not isinstance(base, ParetoObjective):
        raise UserError("a reference point needs a multi-objective search (--objective pareto:M1,min:M2)")
    parts = given.split(",") if isinstance(given, str) else list(given) if isinstance(given, (list, tuple)) else []
    try:
        values = [float(v) for v in parts]
    except (TypeError, ValueError):
        values = []
    if len(values) != len(base.goals) or not all(math.isfinite(v) for v in values):
        raise UserError(f"reference point {given!r}: give {len(base.goals)} numbers, one per metric "
                        f"({', '.join(g.metric for g in base.goals)}), "
                        + ("minimised ones negated" if oriented else "in their own units"))
    return values if oriented else [v * g.sign() for v, g in zip(values, base.goals)]


def parse_objective(text: str | None, constraints: Sequence[str] | None = None):
    """Read an objective from the command line:

    * ``val_accuracy`` (default; maximised), ``min:NAME``, ``max:NAME``;
    * ``mnasnet:T`` (soft reward, w = -0.07, latency_ms target T), ``mnasnet:T,hard``, ``mnasnet:T,w=-0.1``,
      ``mnasnet:target=300e6,latency=flops``;
    * ``pareto`` (val_accuracy up, latency_ms down) or ``pareto:val_accuracy,params`` (several metrics).

    ``constraints`` (``latency_ms<=5`` ...) wrap the result in a :class:`ConstrainedObjective`.
    """
    t = (text or "").strip()
    obj: Any
    if not t:
        obj = MetricObjective()
    elif t == "mnasnet" or t.startswith("mnasnet:"):
        obj = _parse_mnasnet(t.partition(":")[2], t)
    elif t == "pareto" or t.startswith("pareto:"):
        spec = t.partition(":")[2] or "val_accuracy,min:latency_ms"
        obj = ParetoObjective(parse_goals(spec))
    elif "," in t:
        obj = ParetoObjective(parse_goals(t))
    else:
        try:
            g = parse_goal(t)
        except UserError:
            raise UserError(f"bad objective {text!r}: use a metric name such as val_accuracy, min:NAME / max:NAME, "
                            f"mnasnet:TARGET_MS or pareto") from None
        obj = MetricObjective(g.metric, g.maximize if ":" in t else True)
    cons = tuple(parse_constraint(c) for c in constraints or ())
    return ConstrainedObjective(obj, cons) if cons else obj


def objective_from_config(cfg: Mapping[str, Any]):
    """Rebuild an objective from its ``config()`` (as stored in a run directory)."""
    kind = cfg.get("kind", "metric")
    if kind == "metric":
        return MetricObjective(cfg["metric"], cfg.get("maximize", True))
    if kind == "mnasnet":
        return MnasNetObjective(cfg["target"], cfg.get("alpha", SOFT_W), cfg.get("beta", SOFT_W),
                                cfg.get("accuracy", "val_accuracy"), cfg.get("latency", "latency_ms"))
    if kind == "pareto":
        return ParetoObjective(tuple(parse_goal(g) for g in cfg["goals"]))
    if kind == "constrained":
        return ConstrainedObjective(objective_from_config(cfg["base"]),
                                    tuple(parse_constraint(c, known=None) for c in cfg["constraints"]))
    raise UserError(f"unknown objective kind {kind!r}")
