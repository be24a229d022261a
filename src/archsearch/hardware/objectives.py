"""Hardware-aware objectives, generic over metric names: goals (maximise ``val_accuracy``, minimise
``latency_ms`` ...), hard constraints, the MnasNet reward, Pareto dominance, non-dominated sorting, crowding
distance and hypervolume.

Nothing here knows about studies or evaluators: everything takes metric dicts or plain vectors, so that the
same code serves trained models, the latency table and tabular benchmarks. Vectors are *maximised* in every
component (a minimised metric enters negated), as ``Observation.values`` is.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from ..errors import UserError

__all__ = ["KNOWN_METRICS", "Goal", "Constraint", "parse_goal", "parse_goals", "parse_constraint",
           "mnas_reward", "dominates", "non_dominated_sort", "crowding_distance", "pareto_front", "hypervolume"]

#: Metric names constraints and goals may use, with the direction that is better. Evaluators report these
#: (training: accuracies, params, flops, macs, latency_ms, predicted_latency_ms, train_seconds).
KNOWN_METRICS: dict[str, str] = {
    "val_accuracy": "max", "test_accuracy": "max", "params": "min", "flops": "min", "macs": "min",
    "latency_ms": "min", "predicted_latency_ms": "min", "train_seconds": "min", "train_loss": "min",
}


def _check_metric(name: str, known: Mapping[str, str] | Iterable[str] | None, what: str) -> None:
    if known is None or name in known:
        return
    raise UserError(f"unknown metric {name!r} in {what}; choose from: {', '.join(sorted(known))}")


# --------------------------------------------------------------------------------------------------------------
# goals and constraints
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Goal:
    """One objective component: a metric and whether more is better."""

    metric: str
    maximize: bool = True

    def sign(self) -> float:
        return 1.0 if self.maximize else -1.0

    def __str__(self) -> str:
        return f"{'max' if self.maximize else 'min'}:{self.metric}"


def parse_goal(text: str, known: Mapping[str, str] | None = None) -> Goal:
    """``NAME`` (its usual direction: accuracies up, costs down), ``max:NAME`` or ``min:NAME``."""
    t = text.strip()
    direction, sep, name = t.partition(":")
    if not sep:
        direction, name = "", t
    if direction not in ("", "max", "min") or not re.fullmatch(r"[A-Za-z_]\w*", name):
        raise UserError(f"bad objective component {text!r}: use a metric name, min:NAME or max:NAME")
    if known is not None:
        _check_metric(name, known, f"objective {text!r}")
    if not direction:
        direction = (known or KNOWN_METRICS).get(name, "max")
    return Goal(name, direction == "max")


def parse_goals(text: str, known: Mapping[str, str] | None = None) -> tuple[Goal, ...]:
    """Comma-separated goals, e.g. ``val_accuracy,latency_ms`` (accuracy up, latency down)."""
    goals = tuple(parse_goal(t, known) for t in text.split(",") if t.strip())
    if len(goals) < 2:
        raise UserError(f"a multi-objective search needs at least two metrics, got {text!r}")
    if len({g.metric for g in goals}) != len(goals):
        raise UserError(f"a metric appears twice in {text!r}")
    return goals


_OPS = {"<=": lambda v, b: v <= b, "<": lambda v, b: v < b, ">=": lambda v, b: v >= b, ">": lambda v, b: v > b}
_SUFFIX = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_CONSTRAINT = re.compile(rf"\s*([A-Za-z_]\w*)\s*(<=|>=|<|>)\s*({_NUMBER})\s*([kKMGT]?)\s*")


@dataclass(frozen=True)
class Constraint:
    """A hard constraint on one metric, e.g. ``latency_ms <= 5`` or ``params <= 1e6``."""

    metric: str
    op: str
    bound: float

    def __post_init__(self):
        if self.op not in _OPS:
            raise UserError(f"bad constraint operator {self.op!r}: use <=, <, >= or >")

    def value(self, metrics: Mapping[str, float]) -> float | None:
        v = metrics.get(self.metric)
        if v is None or not isinstance(v, (int, float)) or math.isnan(v):
            return None
        return float(v)

    def satisfied(self, metrics: Mapping[str, float]) -> bool | None:
        """True/False, or None when the metric is missing."""
        v = self.value(metrics)
        return None if v is None else bool(_OPS[self.op](v, self.bound))

    def violation(self, metrics: Mapping[str, float]) -> float:
        """How far outside the bound, relative to it (0 when satisfied; inf when the metric is missing)."""
        v = self.value(metrics)
        if v is None:
            return math.inf
        if _OPS[self.op](v, self.bound):
            return 0.0
        return abs(v - self.bound) / max(abs(self.bound), 1e-12)

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.bound:g}"

    def spec(self) -> str:
        """The exact text form (what ``parse_constraint`` reads back to an equal constraint)."""
        return f"{self.metric}{self.op}{self.bound!r}"


def parse_constraint(text: str, known: Mapping[str, str] | Iterable[str] | None = KNOWN_METRICS) -> Constraint:
    """``METRIC<=BOUND`` (or <, >=, >); the bound may carry k/M/G (``params<=1.5M``, ``flops<=300M``)."""
    m = _CONSTRAINT.fullmatch(text or "")
    if m is None:
        raise UserError(f"bad constraint {text!r}: use METRIC<=BOUND, e.g. latency_ms<=5, params<=1.5M, "
                        f"flops<=3e8")
    name, op, num, suffix = m.groups()
    _check_metric(name, known, f"constraint {text!r}")
    return Constraint(name, op, float(num) * _SUFFIX[suffix])


# --------------------------------------------------------------------------------------------------------------
# MnasNet reward
# --------------------------------------------------------------------------------------------------------------
#: MnasNet's exponents (Tan et al., CVPR 2019, Sec. 3): soft w = -0.07 on both sides of the target; hard:
#: no reward for being faster (alpha = 0), a steep penalty for being slower (beta = -1).
SOFT_W = -0.07
HARD_ALPHA, HARD_BETA = 0.0, -1.0


def mnas_reward(accuracy: float, latency: float, target: float, alpha: float = SOFT_W,
                beta: float = SOFT_W) -> float:
    """ACC(m) x (LAT(m) / T)^w with w = alpha when LAT <= T, else beta (MnasNet's reward, Sec. 3)."""
    if target <= 0:
        raise ValueError("the MnasNet latency target must be positive")
    if latency <= 0:
        raise ValueError(f"latency must be positive, got {latency}")
    w = alpha if latency <= target else beta
    return float(accuracy) * (float(latency) / float(target)) ** w


# --------------------------------------------------------------------------------------------------------------
# Pareto: dominance, non-dominated sorting, crowding, hypervolume (every component maximised)
# --------------------------------------------------------------------------------------------------------------
def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """``a`` is at least as good as ``b`` everywhere and better somewhere (maximisation)."""
    better = False
    for x, y in zip(a, b):
        if x < y:
            return False
        if x > y:
            better = True
    return better


def non_dominated_sort(points: Sequence[Sequence[float]]) -> list[list[int]]:
    """Fronts of indices, best first (Deb et al., "A Fast and Elitist Multiobjective Genetic Algorithm:
    NSGA-II", IEEE TEC 2002). Equal points share a front."""
    n = len(points)
    dominated_by: list[list[int]] = [[] for _ in range(n)]
    count = [0] * n
    for i in range(n):
        for j in range(i + 1, n):
            if dominates(points[i], points[j]):
                dominated_by[i].append(j)
                count[j] += 1
            elif dominates(points[j], points[i]):
                dominated_by[j].append(i)
                count[i] += 1
    fronts: list[list[int]] = []
    current = [i for i in range(n) if count[i] == 0]
    while current:
        fronts.append(current)
        nxt = []
        for i in current:
            for j in dominated_by[i]:
                count[j] -= 1
                if count[j] == 0:
                    nxt.append(j)
        current = sorted(nxt)
    return fronts


def crowding_distance(points: Sequence[Sequence[float]], front: Sequence[int]) -> dict[int, float]:
    """NSGA-II's crowding distance of each index of ``front`` (boundary points: infinity)."""
    dist = {i: 0.0 for i in front}
    if len(front) <= 2:
        return {i: math.inf for i in front}
    for k in range(len(points[front[0]])):
        order = sorted(front, key=lambda i: points[i][k])
        lo, hi = points[order[0]][k], points[order[-1]][k]
        dist[order[0]] = dist[order[-1]] = math.inf
        if hi == lo:
            continue
        for a, i, b in zip(order, order[1:], order[2:]):
            dist[i] += (points[b][k] - points[a][k]) / (hi - lo)
    return dist


def pareto_front(points: Sequence[Sequence[float]]) -> list[int]:
    """Indices of the non-dominated points (in input order)."""
    return sorted(non_dominated_sort(points)[0]) if len(points) else []


def hypervolume(points: Iterable[Sequence[float]], reference: Sequence[float]) -> float:
    """The volume dominated by ``points`` and bounded below by ``reference`` (maximisation; points not better
    than the reference in every component add nothing). Exact, by slicing (While et al., IEEE TEC 2006);
    fine for the fronts of a search (hundreds of points, two to four objectives)."""
    ref = tuple(float(r) for r in reference)
    pts = [tuple(float(x) for x in p) for p in points]
    pts = [p for p in pts if len(p) == len(ref) and all(x > r for x, r in zip(p, ref))]
    return _hv(pts, ref)


def _hv(pts: list[tuple[float, ...]], ref: tuple[float, ...]) -> float:
    if not pts:
        return 0.0
    if len(ref) == 1:
        return max(p[0] for p in pts) - ref[0]
    front = [pts[i] for i in pareto_front(pts)]
    if len(ref) == 2:
        front.sort(key=lambda p: -p[0])
        vol, y_prev = 0.0, ref[1]
        for x, y in front:
            if y > y_prev:
                vol += (x - ref[0]) * (y - y_prev)
                y_prev = y
        return vol
    front.sort(key=lambda p: -p[-1])
    vol = 0.0
    for i, p in enumerate(front):
        below = front[i + 1][-1] if i + 1 < len(front) else ref[-1]
        if p[-1] > below:
            vol += (p[-1] - below) * _hv([q[:-1] for q in front[:i + 1]], ref[:-1])
    return vol
