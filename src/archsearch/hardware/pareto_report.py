"""A search's Pareto front from its trial records: which trials are non-dominated in (cost, quality), as rows
and as a plot. Works on any run: a Pareto objective's own metrics, or any two metrics the trials recorded."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from ..errors import UserError
from .objectives import Goal, hypervolume, pareto_front, parse_goal

__all__ = ["FrontReport", "front_report", "plot_front", "default_axes"]


@dataclass
class FrontReport:
    """``goals`` = (x, y): x usually a cost (minimised), y a quality (maximised). Rows are dicts with
    ``trial``, ``text`` (the architecture), both metrics and ``feasible``."""

    goals: tuple[Goal, Goal]
    front: list[dict[str, Any]]
    points: list[dict[str, Any]]
    infeasible: list[dict[str, Any]] = field(default_factory=list)

    @property
    def n_feasible(self) -> int:
        return len(self.points)

    @property
    def n_infeasible(self) -> int:
        return len(self.infeasible)

    def vectors(self, rows: Iterable[Mapping[str, Any]] | None = None) -> list[tuple[float, float]]:
        """Rows as maximised vectors (x, y)."""
        gx, gy = self.goals
        return [(gx.sign() * r[gx.metric], gy.sign() * r[gy.metric]) for r in (self.front if rows is None else rows)]

    def hypervolume(self, reference: Sequence[float]) -> float:
        """Hypervolume of the front with ``reference`` given in the metrics' own units (x, y)."""
        gx, gy = self.goals
        return hypervolume(self.vectors(), (gx.sign() * reference[0], gy.sign() * reference[1]))

    def to_dict(self) -> dict[str, Any]:
        return {"x": str(self.goals[0]), "y": str(self.goals[1]), "front": self.front,
                "n_feasible": self.n_feasible, "n_infeasible": self.n_infeasible}


def default_axes(objective_cfg: Mapping[str, Any] | None, records: Sequence[Any]) -> tuple[str, str]:
    """(x, y) goal texts: the run's Pareto objective's first two metrics (cost on x), else latency_ms (or
    params when no trial has latency) against val_accuracy."""
    cfg = dict(objective_cfg or {})
    if cfg.get("kind") == "constrained":
        cfg = dict(cfg.get("base") or {})
    if cfg.get("kind") == "pareto" and len(cfg.get("goals", [])) >= 2:
        y, x = cfg["goals"][0], cfg["goals"][1]
        return x, y
    has_latency = any("latency_ms" in (r.metrics or {}) for r in records)
    return ("min:latency_ms" if has_latency else "min:params"), "max:val_accuracy"


def front_report(records: Sequence[Any], fmt: Callable[[Any], str], x: str, y: str) -> FrontReport:
    """The front of ``records`` (storage.TrialRecord-like: number, arch, status, metrics) in goals ``x``, ``y``
    (``NAME``, ``min:NAME``, ``max:NAME``). Feasible = status ok; infeasible trials are listed apart."""
    gx, gy = parse_goal(x), parse_goal(y)
    if gx.metric == gy.metric:
        raise UserError("pareto: the x and y metrics must differ")
    rows, bad = [], []
    for r in records:
        m = r.metrics or {}
        if r.status not in ("ok", "infeasible") or not all(isinstance(m.get(g.metric), (int, float))
                                                          for g in (gx, gy)):
            continue
        row = {"trial": r.number, "text": fmt(r.arch), gx.metric: float(m[gx.metric]),
               gy.metric: float(m[gy.metric]), "feasible": r.status == "ok"}
        (rows if r.status == "ok" else bad).append(row)
    if not rows:
        seen = sorted({k for r in records for k in (r.metrics or {})})
        raise UserError(f"pareto: no successful trial has both {gx.metric} and {gy.metric} (the trials have: "
                        f"{', '.join(seen) or 'no metrics'})")
    rep = FrontReport((gx, gy), [], rows, bad)
    idx = pareto_front(rep.vectors(rows))
    rep.front = sorted((rows[i] for i in idx), key=lambda r: gx.sign() * r[gx.metric], reverse=True)
    return rep


def plot_front(rep: FrontReport, path: str | Path) -> Path:
    """Scatter of every trial (infeasible ones as x), the front as a staircase; written as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gx, gy = rep.goals
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    ax.scatter([r[gx.metric] for r in rep.points], [r[gy.metric] for r in rep.points], s=14, color="0.65",
               label=f"trials ({rep.n_feasible})")
    if rep.infeasible:
        ax.scatter([r[gx.metric] for r in rep.infeasible], [r[gy.metric] for r in rep.infeasible], s=18,
                   marker="x", color="tab:red", label=f"infeasible ({rep.n_infeasible})")
    fx, fy = [r[gx.metric] for r in rep.front], [r[gy.metric] for r in rep.front]
    ax.step(fx, fy, where="post", color="tab:blue", lw=1.2)
    ax.scatter(fx, fy, s=24, color="tab:blue", zorder=3, label=f"Pareto front ({len(rep.front)})")
    ax.set_xlabel(f"{gx.metric} ({'lower' if not gx.maximize else 'higher'} is better)")
    ax.set_ylabel(f"{gy.metric} ({'higher' if gy.maximize else 'lower'} is better)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
