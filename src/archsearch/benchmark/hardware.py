"""Hardware-aware tabular benchmark: constrained and multi-objective strategies compared over many seeds.

The tabular evaluator joins measured latencies (six devices for NAS-Bench-201; ``--hardware DEVICE`` makes one of
them ``latency_ms``), so that accuracy/latency trade-offs can be compared in seconds, as in HW-NAS-Bench (Li et
al., ICLR 2021). Two modes, by the objective:

* multi-objective (``val_accuracy,latency_ms``): after each query, the hypervolume of the feasible non-dominated
  set found so far, as a fraction of the hypervolume of the whole table's front (every metric in its own units).
  The reference point is the table's median for a maximised metric (accuracy) and its worst value for a
  minimised one (latency), so the fraction rewards good trade-offs among the better half of the networks and
  is 1 only for the whole front (Zitzler & Thiele's hypervolume, IEEE TEC 1999).
* constrained single-objective (``val_accuracy`` with ``--constraint latency_ms<=X``): the incumbent is the best
  validation accuracy among feasible architectures; we report its test accuracy (never used for choosing) and
  the share of queries spent on infeasible ones.

Strategies that take a ``constraints`` option (``bo-constrained``, ``bo-ehvi``, ``optuna-tpe`` ...) are given the
constraints; the others only see which results were infeasible. Strategies that take a ``ref_point``
(``bo-ehvi``) are given the reference point the hypervolume is scored with, as a user of BoTorch's qEHVI gives
the one they score with. As in :mod:`.benchmark`, seeds run in parallel
worker processes and every strategy sees the same seeds.
"""
from __future__ import annotations

import json
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .tabular import BASELINE, _check_names, _context, _round, _std, checkpoints
from ..errors import UserError
from ..evaluators import make_evaluator
from ..hardware.objectives import hypervolume
from ..objective import ConstrainedObjective, ParetoObjective, parse_objective
from ..result import OK, Result
from ..step import step
from ..run_config import RunConfig
from ..spaces import get_space
from ..strategies import make_strategy, strategy_options_for

__all__ = ["HWRun", "HWBenchmarkResult", "TableScorer", "run_one_hw", "run_hw_benchmark", "write_hw_outputs",
           "hw_table_rows"]


@dataclass
class HWRun:
    """One (strategy, seed) run, per query: hypervolume fraction, incumbent test accuracy, infeasible share."""

    strategy: str
    seed: int
    hv_fraction: np.ndarray  # (trials,) NaN in single-objective mode
    test_accuracy: np.ndarray  # (trials,) of the best feasible validation accuracy so far; NaN until one
    infeasible_share: np.ndarray  # (trials,) share of queries so far on infeasible architectures
    front: list[list[float]]  # the metrics (own units) of the feasible front found, multi-objective mode
    strategy_seconds: float
    failed: int = 0


class TableScorer:
    """What a benchmark needs to know about the whole table: each goal's reference value, the true front and its
    hypervolume (multi-objective), the best feasible architecture (constrained)."""

    def __init__(self, evaluator: Any, objective: Any):
        self.objective = objective
        base = objective.base if isinstance(objective, ConstrainedObjective) else objective
        self.multi = isinstance(base, ParetoObjective)
        self.goals = base.goals if self.multi else ()
        scores = [objective.score(Result(metrics=dict(m))) for m in evaluator._metrics.values()]
        metrics = list(evaluator._metrics.values())
        if self.multi:
            all_v = np.array([s.values for s in scores if s.values is not None])
            if len(all_v) == 0:
                raise UserError("no architecture of the table has every metric of the objective")
            self.reference = np.array([np.median(all_v[:, j]) if g.maximize else all_v[:, j].min()
                                       for j, g in enumerate(self.goals)])
            feas = np.array([s.values for s in scores if s.status == OK])
            if len(feas) == 0:
                raise UserError("no architecture of the table satisfies the constraints")
            self.true_front = feas[_front_mask(feas)]
            self.true_hv = hypervolume(self.true_front, self.reference)
            if not self.true_hv > 0:
                raise UserError("the table's front has no hypervolume above the reference point")
        ok = [(s.value, m.get("test_accuracy", math.nan)) for s, m in zip(scores, metrics) if s.status == OK]
        if not ok:
            raise UserError("no architecture of the table satisfies the constraints")
        self.best_feasible_test = max(ok)[1]
        self.feasible_share = len(ok) / len(scores)

    def hv_fraction(self, front: np.ndarray) -> float:
        return hypervolume(front, self.reference) / self.true_hv if len(front) else 0.0

    def units(self, values: Sequence[float]) -> list[float]:
        """A vector (maximised) back in the metrics' own units."""
        return [float(v) * g.sign() for v, g in zip(values, self.goals)]


def _front_mask(Y: np.ndarray) -> np.ndarray:
    """Non-dominated rows of a large ``Y``: a sort-and-sweep for two objectives, pairwise in chunks otherwise."""
    if Y.shape[1] == 2:
        order = np.lexsort((-Y[:, 1], -Y[:, 0]))  # x descending, then y descending
        mask = np.zeros(len(Y), bool)
        best_y, last = -math.inf, None
        for i in order:
            x, y = Y[i]
            if y > best_y or (last is not None and x == last[0] and y == last[1]):
                mask[i] = True
                best_y, last = max(best_y, y), (x, y)
        return mask
    mask = np.ones(len(Y), bool)
    for start in range(0, len(Y), 512):
        block = Y[start:start + 512]
        ge = (Y[:, None, :] >= block[None, :, :]).all(-1)
        gt = (Y[:, None, :] > block[None, :, :]).any(-1)
        mask[start:start + 512] = ~(ge & gt).any(0)
    return mask


# ---- one run -----------------------------------------------------------------------------------------------
def run_one_hw(strategy: str, seed: int, trials: int, space: Any, evaluator: Any, objective: Any,
               scorer: TableScorer) -> HWRun:
    """Ask, evaluate, score, tell ``trials`` times, tracking the feasible front and the feasible incumbent."""
    ref = scorer.reference if scorer.multi else None
    strat = make_strategy(strategy, space, seed=seed, **strategy_options_for(strategy, objective, ref))
    hv, test, infeasible = np.full(trials, np.nan), np.full(trials, np.nan), np.zeros(trials)
    front = np.zeros((0, len(scorer.goals)))
    best_val, best_test, n_infeasible, failed, t_strategy, frac = -math.inf, math.nan, 0, 0, 0.0, 0.0
    for t in range(trials):
        st = step(strat, evaluator, objective, seed, t)
        s, r = st.score, st.result
        t_strategy += st.strategy_seconds
        failed += s.status == "failed"
        n_infeasible += not s.feasible
        if s.status == OK:
            if s.value > best_val:
                best_val, best_test = s.value, r.metrics.get("test_accuracy", math.nan)
            if scorer.multi and not (front >= np.array(s.values)).all(1).any():
                front = np.vstack([front[~(np.array(s.values) >= front).all(1)], s.values])
                frac = scorer.hv_fraction(front)
        hv[t] = frac if scorer.multi else math.nan
        test[t] = best_test
        infeasible[t] = n_infeasible / (t + 1)
    return HWRun(strategy, seed, hv, test, infeasible, [scorer.units(v) for v in front], t_strategy, failed)


# ---- worker processes --------------------------------------------------------------------------------------
_WORKER: dict[str, Any] = {}


def _init_worker(space_name: str, evaluator_options: dict, objective_text: str, constraints: list[str]) -> None:
    import torch
    torch.set_num_threads(1)
    space = get_space(space_name)
    ev = make_evaluator("tabular", space, **evaluator_options)
    obj = parse_objective(objective_text, constraints)
    _WORKER.update(space=space, evaluator=ev, objective=obj, scorer=TableScorer(ev, obj))


def _work(strategy: str, seed: int, trials: int) -> HWRun:
    w = _WORKER
    return run_one_hw(strategy, seed, trials, w["space"], w["evaluator"], w["objective"], w["scorer"])


@dataclass
class HWBenchmarkResult:
    """Every (strategy, seed) run plus the settings and the table facts."""

    objective: str
    constraints: list[str]
    hardware: str | None
    table: str
    seeds: int
    trials: int
    runs: dict[str, list[HWRun]]
    scorer: TableScorer
    wall_seconds: float
    workers: int
    checkpoints: list[int] = field(default_factory=list)

    @property
    def multi(self) -> bool:
        return self.scorer.multi

    def stack(self, name: str, what: str) -> np.ndarray:
        return np.stack([getattr(r, what) for r in self.runs[name]])

    def summary(self) -> dict[str, dict[str, dict[str, dict[str, float | None]]]]:
        """``{strategy: {"100": {"hypervolume_fraction"|"test_accuracy"|"infeasible_share": {mean, std}}}}``."""
        what = (["hv_fraction"] if self.multi else ["test_accuracy"]) + (["infeasible_share"] if self.constraints
                                                                          else [])
        keys = {"hv_fraction": "hypervolume_fraction", "test_accuracy": "test_accuracy",
                "infeasible_share": "infeasible_share"}
        out: dict[str, Any] = {}
        for name in self.runs:
            out[name] = {}
            for q in self.checkpoints:
                out[name][str(q)] = {}
                for w in what:
                    col = self.stack(name, w)[:, q - 1]
                    out[name][str(q)][keys[w]] = {"mean": _round(np.nanmean(col)) if not np.isnan(col).all()
                                                  else None, "std": _round(_std(col))}
        return out

    def to_json(self) -> dict[str, Any]:
        s = self.scorer
        data: dict[str, Any] = {
            "mode": "multi-objective" if self.multi else "constrained" if self.constraints else "single-objective",
            "objective": self.objective, "constraints": self.constraints, "hardware": self.hardware,
            "table": self.table, "seeds": self.seeds, "trials": self.trials, "checkpoints": self.checkpoints,
            "strategies": self.summary(), "wall_seconds": round(self.wall_seconds, 3), "workers": self.workers,
            "strategy_seconds_per_query": {n: float(f"{sum(r.strategy_seconds for r in rs) / (self.seeds * self.trials):.3g}")
                                           for n, rs in self.runs.items()},
            "failed_queries": {n: sum(r.failed for r in rs) for n, rs in self.runs.items()},
            "feasible_share_of_table": round(s.feasible_share, 4),
            "best_feasible_test_accuracy": s.best_feasible_test,
        }
        if self.multi:
            data.update(goals=[str(g) for g in s.goals], reference=s.units(s.reference),
                        true_front_hypervolume=s.true_hv,
                        true_front=sorted(s.units(v) for v in s.true_front),
                        fronts_found={n: [r.front for r in rs] for n, rs in self.runs.items()})
        return data


def run_hw_benchmark(strategies: Sequence[str], objective: str = "val_accuracy,latency_ms",
                     constraints: Sequence[str] = (), hardware: str | None = None, seeds: int = 20,
                     trials: int = 150, table: str | Path | None = None,
                     metrics_tables: Sequence[str | Path] | None = None, workers: int | None = None,
                     progress: Callable[[int, int], Any] | None = None) -> HWBenchmarkResult:
    """Run every strategy (random always included) on seeds ``0..seeds-1`` against the nb201 table joined with
    its metrics tables (the six-device latency table by default), in the mode the objective implies."""
    if seeds < 1 or trials < 1:
        raise UserError(f"seeds and trials must be positive (got seeds={seeds}, trials={trials})")
    names = _check_names(strategies)
    config = RunConfig(space="nb201", strategy=BASELINE, evaluator="tabular", objective=objective,
                       constraints=list(constraints),
                       table=None if table is None else str(Path(table).expanduser().resolve()),
                       metrics_tables=None if metrics_tables is None else [str(Path(t).expanduser().resolve())
                                                                           for t in metrics_tables],
                       hardware=hardware, evaluator_options={"metrics_tables": []} if metrics_tables == [] else {})
    parts = config.components(cli=True)  # the run's checks: the table, the objective's metrics reported
    space, ev, obj = parts.space, parts.evaluator, parts.objective
    scorer = TableScorer(ev, obj)
    jobs = [(n, s) for s in range(seeds) for n in names]
    runs: list[HWRun] = []
    start = time.perf_counter()
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    if workers == 1:
        for n, s in jobs:
            runs.append(run_one_hw(n, s, trials, space, ev, obj, scorer))
            if progress:
                progress(len(runs), len(jobs))
    else:
        initargs = ("nb201", ev.config(), objective, list(constraints))
        pool = ProcessPoolExecutor(workers, mp_context=_context(), initializer=_init_worker, initargs=initargs)
        try:
            futures = {pool.submit(_work, n, s, trials): i for i, (n, s) in enumerate(jobs)}
            out: list[HWRun | None] = [None] * len(jobs)
            for done, f in enumerate(as_completed(futures), start=1):
                out[futures[f]] = f.result()
                if progress:
                    progress(done, len(jobs))
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
        runs = [r for r in out if r is not None]
    by_name = {n: [r for r in runs if r.strategy == n] for n in names}
    return HWBenchmarkResult(objective, [c.spec() for c in getattr(obj, "constraints", ())], hardware,
                             str(ev.table_path), seeds, trials, by_name, scorer, time.perf_counter() - start,
                             workers, checkpoints(trials))


# ---- reporting ---------------------------------------------------------------------------------------------
def _cell(c: dict[str, float | None], digits: int) -> str:
    return "n/a" if c["mean"] is None else f"{c['mean']:.{digits}f} ± {c['std']:.{digits}f}"


def hw_table_rows(result: HWBenchmarkResult) -> tuple[list[str], list[list[str]]]:
    """One row per strategy: the headline metric at each checkpoint, then the infeasible share at the budget."""
    summ = result.summary()
    key, digits = ("hypervolume_fraction", 3) if result.multi else ("test_accuracy", 2)
    header = ["strategy"] + [f"{q} queries" for q in result.checkpoints]
    if result.constraints:
        header.append(f"infeasible share @{result.checkpoints[-1]}")
    header.append("ask+tell ms/query")
    rows = []
    for n, rs in result.runs.items():
        row = [n] + [_cell(summ[n][str(q)][key], digits) for q in result.checkpoints]
        if result.constraints:
            row.append(_cell(summ[n][str(result.checkpoints[-1])]["infeasible_share"], 2))
        row.append(f"{1e3 * sum(r.strategy_seconds for r in rs) / (result.seeds * result.trials):.2f}")
        rows.append(row)
    return header, rows


def markdown_report(result: HWBenchmarkResult, command: str | None = None) -> str:
    header, rows = hw_table_rows(result)
    what = ("hypervolume fraction of the feasible front found (1 = the table's whole front; reference: "
            + ", ".join(f"{g.metric} {v:g}" for g, v in zip(result.scorer.goals, result.scorer.units(
                result.scorer.reference))) + ")") if result.multi else \
        "test accuracy (%) of the feasible incumbent (best validation accuracy among feasible architectures)"
    lines = [f"# Hardware-aware benchmark: {result.objective}"
             + (f" subject to {', '.join(result.constraints)}" if result.constraints else "")
             + (f" on {result.hardware}" if result.hardware else ""), ""]
    if command:
        lines += ["```", command, "```", ""]
    lines += [f"{what}; mean ± std over {result.seeds} seeds after N queries; {result.workers} worker(s), "
              f"{result.wall_seconds:.1f} s wall.", "",
              "| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows] + [""]
    return "\n".join(lines)


def plot_hw(result: HWBenchmarkResult, path: Path) -> None:
    """Multi-objective: one panel per strategy with every seed's front found over the true front; otherwise the
    feasible incumbent's mean test accuracy per query."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = result.scorer
    if not result.multi:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        x = np.arange(1, result.trials + 1)
        for n in result.runs:
            c = result.stack(n, "test_accuracy")
            ax.plot(x, np.nanmean(c, 0), label=n, lw=1.6)
        ax.axhline(s.best_feasible_test, color="k", ls=":", lw=1, label="best feasible (by val)")
        ax.set_ylim(s.best_feasible_test - 3, s.best_feasible_test + 1)
        ax.set_xlabel("queries")
        ax.set_ylabel("test accuracy of feasible incumbent (%)")
        ax.set_title(f"{', '.join(result.constraints)}: mean over {result.seeds} seeds")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    else:
        n = len(result.runs)
        cols = min(n, 3)
        fig, axes = plt.subplots((n + cols - 1) // cols, cols, figsize=(4.2 * cols, 3.6 * ((n + cols - 1) // cols)),
                                 squeeze=False, sharex=True, sharey=True)
        true = np.array(sorted(s.units(v) for v in s.true_front))
        ref = s.units(s.reference)
        for ax, (name, rs) in zip(axes.flat, result.runs.items()):
            for r in rs:
                f = np.array(sorted(r.front))
                if len(f):
                    ax.step(f[:, 1], f[:, 0], where="post", color="tab:blue", alpha=0.25, lw=0.8)
            ax.step(true[:, 1], true[:, 0], where="post", color="k", lw=1.4, label="true front")
            ax.set_title(f"{name}: HV {np.nanmean(result.stack(name, 'hv_fraction')[:, -1]):.3f}", fontsize=9)
            ax.set_ylim(ref[0] - 1, true[:, 0].max() + 0.5)
            ax.grid(alpha=0.3)
        for ax in axes.flat[n:]:
            ax.axis("off")
        for ax in axes[-1]:
            ax.set_xlabel(f"{s.goals[1].metric}" + (f" ({result.hardware})" if result.hardware else ""))
        for ax in axes[:, 0]:
            ax.set_ylabel(s.goals[0].metric)
        fig.suptitle(f"fronts found after {result.trials} queries ({result.seeds} seeds, blue) vs the table's "
                     f"front (black)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_hw_outputs(result: HWBenchmarkResult, out: str | Path, command: str | None = None) -> dict[str, Path]:
    """``results.json``, ``results.md`` and ``fronts.png`` (multi-objective) or ``curves.png`` under ``out``."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create output folder {out}: {e.strerror or e}") from None
    paths = {"json": out / "results.json", "markdown": out / "results.md",
             "plot": out / ("fronts.png" if result.multi else "curves.png")}
    data = result.to_json()
    if command:
        data["command"] = command
    paths["json"].write_text(json.dumps(data, indent=1) + "\n")
    paths["markdown"].write_text(markdown_report(result, command))
    if len(result.scorer.goals) == 2 or not result.multi:
        plot_hw(result, paths["plot"])
    else:
        del paths["plot"]
    return paths
