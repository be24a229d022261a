"""Seeded comparison of search strategies on a tabular benchmark (``archsearch benchmark``).

Every strategy runs on the same seeds with the same query budget; after each query we record the test accuracy
of the incumbent, the architecture with the best *validation* accuracy so far (test accuracy is for reporting
only, never for choosing: Dong & Yang, ICLR 2020; Lindauer & Hutter, JMLR 2020). The loop is in memory (no run
store) so that thousands of runs take seconds; seeds run in parallel over worker processes.
"""
from __future__ import annotations

import json
import math
import os
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import UserError
from ..evaluators import make_evaluator
from ..run_config import RunConfig
from ..registry import UnknownNameError
from ..objective import MetricObjective
from ..result import OK
from ..spaces import get_space
from ..step import step
from ..strategies import STRATEGIES, make_strategy

__all__ = ["BenchmarkResult", "RunCurve", "run_one", "run_benchmark", "checkpoints", "write_outputs",
           "markdown_table", "DEFAULT_CHECKPOINTS", "BASELINE"]

DEFAULT_CHECKPOINTS = (25, 50, 100, 150)
BASELINE = "random"
WORKER_START_SECONDS = 3.0  # about what a spawned worker needs to import torch and load the table


@dataclass
class RunCurve:
    """One (strategy, seed) run: the incumbent's test accuracy after each query, and where the time went."""

    strategy: str
    seed: int
    test_accuracy: np.ndarray  # shape (trials,); NaN until a first successful query
    strategy_seconds: float  # time inside ask + tell
    evaluator_seconds: float  # time inside evaluate (a lookup for tabular)
    failed: int = 0
    clock: np.ndarray | None = None  # simulated seconds when each query finished (NaN: not run)


@dataclass
class BenchmarkResult:
    """Curves for every strategy (seeds x trials) plus the settings that made them."""

    space: str
    evaluator: str
    table: str
    seeds: int
    trials: int
    curves: dict[str, np.ndarray]  # strategy -> (seeds, trials)
    strategy_seconds_per_query: dict[str, float]
    evaluator_seconds_per_query: dict[str, float]
    failed: dict[str, int]
    wall_seconds: float
    workers: int
    checkpoints: list[int] = field(default_factory=list)
    seconds: float | None = None  # the simulated budget, when runs were charged each query's training time
    clocks: dict[str, np.ndarray] = field(default_factory=dict)  # strategy -> (seeds, trials) simulated seconds

    def second_checkpoints(self) -> list[float]:
        return [] if self.seconds is None else [self.seconds / 4, self.seconds / 2, self.seconds]

    def at_seconds(self, name: str, s: float) -> np.ndarray:
        """The incumbent's test accuracy of each seed at simulated time ``s``."""
        c, k = self.curves[name], self.clocks[name]
        out = np.full(c.shape[0], np.nan)
        for i in range(c.shape[0]):
            done = np.where(k[i] <= s)[0]
            if len(done):
                out[i] = c[i, done[-1]]
        return out

    def queries_within(self, name: str) -> float:
        """Mean number of queries that fit in the simulated budget."""
        return float(np.mean(np.sum(~np.isnan(self.clocks[name]), axis=1)))

    def summary_seconds(self) -> dict[str, dict[str, dict[str, float]]]:
        return {n: {f"{s:g}s": {"mean": _round(_nanmean(self.at_seconds(n, s))),
                                "std": _round(_std(self.at_seconds(n, s)))} for s in self.second_checkpoints()}
                for n in self.curves}

    def summary(self) -> dict[str, dict[str, dict[str, float]]]:
        """``{strategy: {"25": {"mean": M, "std": S}, ...}}``: std over seeds (ddof=1; 0 for a single seed)."""
        out: dict[str, dict[str, dict[str, float]]] = {}
        for name, c in self.curves.items():
            out[name] = {}
            for q in self.checkpoints:
                col = c[:, q - 1]
                out[name][str(q)] = {"mean": _round(_nanmean(col)), "std": _round(_std(col))}
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "strategies": self.summary(), "seeds": self.seeds, "trials": self.trials, "table": self.table,
            "space": self.space, "evaluator": self.evaluator, "checkpoints": self.checkpoints,
            "wall_seconds": round(self.wall_seconds, 3), "workers": self.workers,
            "strategy_seconds_per_query": {k: float(f"{v:.3g}") for k, v in self.strategy_seconds_per_query.items()},
            "evaluator_seconds_per_query": {k: float(f"{v:.3g}") for k, v in self.evaluator_seconds_per_query.items()},
            "failed_queries": self.failed, "seconds": self.seconds,
            "at_seconds": self.summary_seconds() if self.seconds else None,
            "queries_within_seconds": {n: self.queries_within(n) for n in self.curves} if self.seconds else None,
            "curves": {k: {"mean": [_round(x) for x in _nanmean(c, axis=0)],
                           "std": [_round(_std(c[:, t])) for t in range(c.shape[1])]} for k, c in self.curves.items()},
        }


def _nanmean(a: np.ndarray, axis: int | None = None) -> Any:
    """``np.nanmean`` that is NaN, silently, where every seed is NaN (no query fitted the budget yet)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(a, axis=axis)


def _std(col: np.ndarray) -> float:
    col = col[~np.isnan(col)]
    return float(np.std(col, ddof=1)) if len(col) > 1 else 0.0


def _round(x: float) -> float | None:
    return None if x is None or math.isnan(x) else round(float(x), 4)


def checkpoints(trials: int, wanted: Sequence[int] = DEFAULT_CHECKPOINTS) -> list[int]:
    """The reporting points: those of ``wanted`` within the budget, plus the budget itself."""
    pts = sorted({q for q in wanted if q <= trials} | {trials})
    return pts


# ---- one run -----------------------------------------------------------------------------------------------
def run_one(strategy: str, seed: int, trials: int, space: Any, evaluator: Any,
            seconds: float | None = None, objective: Any = None) -> RunCurve:
    """Ask, evaluate, score, tell ``trials`` times (sequentially, :func:`archsearch.step.step`), tracking the
    incumbent by the objective (default: validation accuracy). ``seconds``: a simulated budget; each query is
    charged its ``cost_seconds`` (the cell's training time) on a virtual clock, and the run ends at the query
    that would finish after the budget (deterministic: no wall time is involved)."""
    objective = objective or MetricObjective()
    strat = make_strategy(strategy, space, seed=seed)
    curve = np.full(trials, np.nan)
    sim = np.full(trials, np.nan)
    now = 0.0
    best_val, best_test = -math.inf, math.nan
    t_strategy = t_eval = 0.0
    failed = 0
    for t in range(trials):
        st = step(strat, evaluator, objective, seed, t)
        if seconds is not None:
            now += float(st.result.cost_seconds or 0.0)
            if now > seconds:
                break
            sim[t] = now
        t_strategy += st.strategy_seconds
        t_eval += st.evaluator_seconds
        if st.score.status != OK:
            failed += 1
        elif st.score.value > best_val:
            best_val, best_test = st.score.value, st.result.metrics.get("test_accuracy", math.nan)
        curve[t] = best_test
    return RunCurve(strategy, seed, curve, t_strategy, t_eval, failed, sim if seconds is not None else None)


# ---- worker processes: each loads the space and the table once ----------------------------------------------
_WORKER: dict[str, Any] = {}


def _init_worker(space_name: str, space_config: dict, evaluator: str, evaluator_options: dict,
                 seconds: float | None = None) -> None:
    import torch  # the space module imports torch; one thread per worker, the pool gives the parallelism
    torch.set_num_threads(1)
    space = get_space(space_name, **space_config)
    _WORKER["space"] = space
    _WORKER["evaluator"] = make_evaluator(evaluator, space, **evaluator_options)
    _WORKER["seconds"] = seconds


def _work(strategy: str, seed: int, trials: int) -> RunCurve:
    return run_one(strategy, seed, trials, _WORKER["space"], _WORKER["evaluator"], _WORKER.get("seconds"))


def _context() -> Any:
    """Fresh worker processes: from a fork server that has imported archsearch once (Linux, macOS), else spawned
    (Windows). Never plain fork: the parent may hold threads (a progress display) and torch state."""
    try:
        ctx = get_context("forkserver")
    except ValueError:  # pragma: no cover - no fork server on this platform
        return get_context("spawn")
    ctx.set_forkserver_preload(["archsearch.benchmark"])
    return ctx


def _run_pool(todo: list[tuple[str, int]], trials: int, workers: int, initargs: tuple,
              on_done: Callable[[int], Any]) -> list[RunCurve]:
    """Run (strategy, seed) jobs on worker processes; results in job order. Ctrl-C cancels what has not started."""
    out: list[RunCurve | None] = [None] * len(todo)
    pool = ProcessPoolExecutor(workers, mp_context=_context(), initializer=_init_worker, initargs=initargs)
    try:
        futures = {pool.submit(_work, n, s, trials): i for i, (n, s) in enumerate(todo)}
        for done, f in enumerate(as_completed(futures), start=1):
            out[futures[f]] = f.result()
            on_done(done)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return [r for r in out if r is not None]


def _check_names(strategies: Sequence[str]) -> list[str]:
    names = [s.strip() for s in strategies if s.strip()]
    for n in names:
        try:
            STRATEGIES.get(n)
        except UnknownNameError as e:
            raise UserError(str(e)) from None
    names = [BASELINE] + [n for n in names if n != BASELINE]  # random search is always the baseline
    return list(dict.fromkeys(names))


def run_benchmark(strategies: Sequence[str], seeds: int = 30, trials: int = 150, space: str = "nb201",
                  table: str | Path | None = None, workers: int | None = None, evaluator: str = "tabular",
                  space_config: dict | None = None, evaluator_options: dict | None = None,
                  progress: Callable[[int, int], Any] | None = None,
                  seconds: float | None = None) -> BenchmarkResult:
    """Run every strategy (random always included) on seeds ``0..seeds-1`` for ``trials`` queries each.

    ``workers`` processes share the (strategy, seed) runs; 1 runs them in this process. By default (None) every
    core is used, unless timing seed 0 here shows the whole job to be cheaper than starting worker processes
    (each imports torch: seconds). Workers are fresh processes (fork server or spawn), so a script calling this
    needs the ``if __name__ == "__main__":`` guard.
    ``progress(done, total)`` is called as runs finish. ``seconds``: a simulated budget per run (each query
    charged its training time; ``trials`` is then the most queries a run may make).
    """
    if seeds < 1 or trials < 1:
        raise UserError(f"seeds and trials must be positive (got seeds={seeds}, trials={trials})")
    names = _check_names(strategies)
    config = RunConfig(space=space, strategy=BASELINE, evaluator=evaluator, space_config=dict(space_config or {}),
                       table=None if table is None else str(Path(table).expanduser().resolve()),
                       evaluator_options=dict(evaluator_options or {}))
    try:
        parts = config.components(cli=True)  # the run's checks: the space, the table, the options, up front
    except UnknownNameError as e:
        raise UserError(str(e)) from None
    sp, ev, space_config = parts.space, parts.evaluator, config.space_config
    jobs = [(n, s) for s in range(seeds) for n in names]
    runs: list[RunCurve] = []
    start = time.perf_counter()

    def inline(todo: list[tuple[str, int]]) -> None:
        for n, s in todo:
            runs.append(run_one(n, s, trials, sp, ev, seconds))
            if progress:
                progress(len(runs), len(jobs))

    auto = workers is None
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    if auto and workers > 1:  # seed 0 here first: if the rest is cheaper than starting workers, stay here
        inline(jobs[:len(names)])
        if (time.perf_counter() - start) * (seeds - 1) < WORKER_START_SECONDS:
            workers = 1
    todo = jobs[len(runs):]
    if workers == 1:
        inline(todo)
    elif todo:
        runs.extend(_run_pool(todo, trials, workers, (space, space_config, evaluator, ev.config(), seconds),
                              lambda done: progress(len(runs) + done, len(jobs)) if progress else None))
    wall = time.perf_counter() - start
    curves = {n: np.stack([r.test_accuracy for r in runs if r.strategy == n]) for n in names}
    per_query = seeds * trials
    table_path = str(getattr(ev, "table_path", table or ""))
    return BenchmarkResult(
        space=space, evaluator=evaluator, table=table_path, seeds=seeds, trials=trials, curves=curves,
        strategy_seconds_per_query={n: sum(r.strategy_seconds for r in runs if r.strategy == n) / per_query
                                    for n in names},
        evaluator_seconds_per_query={n: sum(r.evaluator_seconds for r in runs if r.strategy == n) / per_query
                                     for n in names},
        failed={n: sum(r.failed for r in runs if r.strategy == n) for n in names},
        wall_seconds=wall, workers=workers, checkpoints=checkpoints(trials), seconds=seconds,
        clocks={n: np.stack([r.clock for r in runs if r.strategy == n]) for n in names} if seconds else {})


# ---- reporting ---------------------------------------------------------------------------------------------
def _fmt(cell: dict[str, float | None]) -> str:
    return "n/a" if cell["mean"] is None else f"{cell['mean']:.2f} ± {cell['std']:.2f}"


def _overhead(seconds: float) -> str:
    return f"{seconds * 1e3:.3f}"


def table_rows(result: BenchmarkResult, short: bool = False) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the summary table (strategy, one column per checkpoint, overhead per query)."""
    summary = result.summary()
    header = (["strategy"] + [str(q) if short else f"{q} queries" for q in result.checkpoints]
              + ["ms/query" if short else "ask+tell ms/query"])
    rows = [[n] + [_fmt(summary[n][str(q)]) for q in result.checkpoints]
            + [_overhead(result.strategy_seconds_per_query[n])] for n in result.curves]
    return header, rows


def markdown_table(result: BenchmarkResult) -> str:
    header, rows = table_rows(result)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def markdown_report(result: BenchmarkResult, command: str | None = None) -> str:
    """``results.md``: what was run, and the table (incumbent test accuracy, mean ± std over seeds)."""
    lines = [f"# Benchmark: {result.space} on {Path(result.table).name}", ""]
    if command:
        lines += ["```", command, "```", ""]
    lines += [f"Test accuracy (%) of the incumbent (best validation accuracy so far), mean ± std over "
              f"{result.seeds} seeds, after N queries; {result.trials} queries per run; "
              f"{result.workers} worker(s), {result.wall_seconds:.1f} s wall.", "", markdown_table(result), ""]
    if result.seconds:
        lines += [f"On the simulated clock (each query charged its cell's 12-epoch CIFAR-10 training time), "
                  f"incumbent test accuracy at these seconds; queries within {result.seconds:g} s:", "",
                  markdown_seconds_table(result), ""]
    return "\n".join(lines)


def markdown_seconds_table(result: BenchmarkResult) -> str:
    pts = result.second_checkpoints()
    summ = result.summary_seconds()
    lines = ["| strategy | " + " | ".join(f"{s:g} s" for s in pts) + " | queries |",
             "|---|" + "---:|" * (len(pts) + 1)]
    for n in result.curves:
        lines.append(f"| {n} | " + " | ".join(_fmt(summ[n][f'{s:g}s']) for s in pts)
                     + f" | {result.queries_within(n):.1f} |")
    return "\n".join(lines)


def plot_curves(result: BenchmarkResult, path: str | Path) -> None:
    """Mean incumbent test accuracy per query with ± std bands (one line per strategy)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    x = np.arange(1, result.trials + 1)
    lows, highs = [], []
    for name, c in result.curves.items():
        mean = _nanmean(c, axis=0)
        std = np.array([_std(c[:, t]) for t in range(c.shape[1])])
        ax.plot(x, mean, label=name, lw=1.6)
        ax.fill_between(x, mean - std, mean + std, alpha=0.18)
        start = min(len(x) - 1, max(0, len(x) // 10))
        lows.append(np.nanmin((mean - std)[start:]))
        highs.append(np.nanmax((mean + std)[start:]))
    if lows and np.isfinite(min(lows)) and np.isfinite(max(highs)):
        ax.set_ylim(min(lows) - 0.25, max(highs) + 0.25)
    ax.set_xlabel("queries")
    ax.set_ylabel("test accuracy of incumbent (%)")
    ax.set_title(f"{result.space}, {Path(result.table).name}: mean ± std over {result.seeds} seeds")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_outputs(result: BenchmarkResult, out: str | Path, command: str | None = None) -> dict[str, Path]:
    """Write ``results.json``, ``results.md`` and ``curves.png`` under ``out`` (created)."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create output folder {out}: {e.strerror or e}") from None
    paths = {"json": out / "results.json", "markdown": out / "results.md", "plot": out / "curves.png"}
    data = result.to_json()
    if command:
        data["command"] = command
    paths["json"].write_text(json.dumps(data, indent=1) + "\n")
    paths["markdown"].write_text(markdown_report(result, command))
    plot_curves(result, paths["plot"])
    return paths
