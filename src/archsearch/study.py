"""The study: ask -> evaluate (through an executor) -> tell -> store, within a budget; resumable from its run
directory alone.

Resume replays the stored ask/tell events into a fresh strategy built with the same seed (strategies are
deterministic, so the replayed asks reproduce the stored architectures), re-queues the trials that were
running when the driver died, and continues to the original budget.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from . import __version__
from .errors import UserError
from .evaluators import EvaluatorSpec
from .executors import EXECUTORS, Executor, Job
from .objective import MetricObjective, objective_from_config
from .result import Observation, Result
from .space import Architecture, SearchSpace
from .spaces import get_space
from .storage import RUNNING, RunStore, TrialRecord, fresh_dir
from .strategies import Strategy, make_strategy

BEST_JSON, BEST_WEIGHTS = "best.json", "best.pt"


@dataclass(frozen=True)
class Budget:
    trials: int | None = None
    seconds: float | None = None

    def __post_init__(self):
        if self.trials is None and self.seconds is None:
            raise UserError("give a budget: --trials N and/or --seconds S")
        if self.trials is not None and self.trials <= 0:
            raise UserError(f"the trial budget must be positive, got {self.trials}")
        if self.seconds is not None and self.seconds <= 0:
            raise UserError(f"the time budget must be positive, got {self.seconds}")


@dataclass
class Progress:
    """What the study reports after every finished trial (for progress bars and logs)."""

    finished: int
    budget: Budget
    elapsed: float
    best: TrialRecord | None
    last: TrialRecord


def trial_seed(study_seed: int, number: int) -> int:
    """A per-trial seed derived from the study seed and the trial number (stable across resumes)."""
    return int(np.random.SeedSequence([int(study_seed), int(number)]).generate_state(1)[0] & 0x7FFFFFFF)


def check_threads(threads: int | None) -> None:
    """Threads per worker: None (the cores shared out) or at least 1."""
    if threads is not None and threads < 1:
        raise UserError(f"--threads must be at least 1, got {threads}")


def check_execution(executor: str, workers: int | None, address: str | None, retries: int,
                    trial_timeout: float | None, threads: int | None = None) -> dict[str, Any]:
    """Validate the execution settings (stored in the run, so a resumed run executes the same way)."""
    EXECUTORS.get(executor)
    if workers is not None and workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    check_threads(threads)
    if retries < 0:
        raise UserError(f"--retries must be 0 or more, got {retries}")
    if trial_timeout is not None and trial_timeout <= 0:
        raise UserError(f"--trial-timeout must be positive, got {trial_timeout}")
    if executor == "inline" and (trial_timeout is not None or (workers or 1) > 1):
        raise UserError("--trial-timeout and --workers > 1 need --executor process or ray")
    if address and executor != "ray":
        raise UserError("--address is for --executor ray")
    out: dict[str, Any] = {"name": executor, "retries": retries}
    if threads is not None:
        out["threads"] = threads
    if executor != "inline":
        out.update(workers=workers, trial_timeout=trial_timeout)
    if address:
        out["address"] = address
    return out


def default_run_dir(space: str, strategy: str, root: str | Path = "runs") -> Path:
    return fresh_dir(root, f"{space}-{strategy}")


@dataclass
class Study:
    run_dir: Path
    space: SearchSpace
    strategy: Strategy
    spec: EvaluatorSpec
    objective: MetricObjective
    budget: Budget
    seed: int
    execution: dict[str, Any] = field(default_factory=lambda: {"name": "inline"})
    store: RunStore = field(init=False)

    # ---- construction -----------------------------------------------------------------------------------------
    @classmethod
    def create(cls, *, space: str, strategy: str, evaluator: str, budget: Budget, seed: int = 0,
               space_config: dict | None = None, strategy_options: dict | None = None,
               evaluator_options: dict | None = None, objective: MetricObjective | None = None,
               run_dir: str | Path | None = None, executor: str = "inline", workers: int | None = None,
               address: str | None = None, retries: int = 0, trial_timeout: float | None = None,
               threads: int | None = None) -> "Study":
        """``threads``: CPU threads of each worker (default: the cores shared out among the workers)."""
        space_config, strategy_options = dict(space_config or {}), dict(strategy_options or {})
        evaluator_options = dict(evaluator_options or {})
        objective = objective or MetricObjective()
        sp = get_space(space, **space_config)
        try:
            strat = make_strategy(strategy, sp, seed=seed, **strategy_options)
        except ValueError as e:  # a bad option value: the strategies say which in their message
            raise UserError(str(e)) from None
        except TypeError as e:
            if not strategy_options:
                raise
            raise UserError(f"--strategy-opt: {e}") from None  # an option the strategy does not have
        execution = check_execution(executor, workers, address, retries, trial_timeout, threads)
        spec = EvaluatorSpec(space, space_config, evaluator, evaluator_options)
        run_dir = Path(run_dir) if run_dir else default_run_dir(space, strategy)
        if RunStore.is_run(run_dir):
            raise UserError(f"{run_dir} already holds a run; resume it with --resume {run_dir}")
        study = cls(run_dir, sp, strat, spec, objective, budget, seed, execution)
        study.store = RunStore(run_dir, create=True)
        study.store.set_meta("config", {
            "version": __version__, "created": datetime.now().isoformat(timespec="seconds"),
            "space": {"name": space, "config": space_config},
            "strategy": {"name": strategy, "options": strategy_options},
            "evaluator": {"name": evaluator, "options": evaluator_options},
            "objective": objective.config(), "budget": {"trials": budget.trials, "seconds": budget.seconds},
            "seed": seed, "executor": execution,
        })
        study.store.set_meta("elapsed_seconds", 0.0)
        return study

    @classmethod
    def resume(cls, run_dir: str | Path) -> "Study":
        run_dir = Path(run_dir)
        if not RunStore.is_run(run_dir):
            raise UserError(f"{run_dir} is not an archsearch run directory (no study.db)")
        store = RunStore(run_dir)
        cfg = store.get_meta("config")
        if not cfg:
            raise UserError(f"{run_dir}: the run database has no configuration")
        sp = get_space(cfg["space"]["name"], **cfg["space"]["config"])
        strat = make_strategy(cfg["strategy"]["name"], sp, seed=cfg["seed"], **cfg["strategy"]["options"])
        spec = EvaluatorSpec(cfg["space"]["name"], cfg["space"]["config"], cfg["evaluator"]["name"],
                             cfg["evaluator"]["options"])
        budget = Budget(cfg["budget"]["trials"], cfg["budget"]["seconds"])
        study = cls(run_dir, sp, strat, spec, objective_from_config(cfg["objective"]), budget, cfg["seed"],
                    cfg.get("executor", {"name": "inline"}))
        study.store = store
        return study

    # ---- the loop ---------------------------------------------------------------------------------------------
    def run(self, on_trial: Callable[[Progress], None] | None = None) -> "StudySummary":
        evaluator = self.spec.build()
        ex = dict(self.execution)
        retries = int(ex.pop("retries", 0) or 0)
        executor: Executor = EXECUTORS.get(ex.pop("name"))(evaluator=evaluator, **ex)
        requeue = self._replay()
        event = self._next_event()
        records = {r.number: r for r in self.store.trials()}
        finished = sum(1 for r in records.values() if r.done)
        elapsed0 = float(self.store.get_meta("elapsed_seconds", 0.0))
        t0 = time.perf_counter()
        best = self._best(records.values())
        weights: dict[int, dict] = {}
        retried: dict[int, int] = {}

        def elapsed() -> float:
            return elapsed0 + time.perf_counter() - t0

        def budget_left() -> bool:
            if self.budget.trials is not None and finished + executor.in_flight >= self.budget.trials:
                return False
            return self.budget.seconds is None or elapsed() < self.budget.seconds

        try:
            for rec in requeue:
                self.store.restart_trial(rec.number)
                executor.submit(Job(rec.number, rec.arch, rec.seed, rec.fidelity))
            while True:
                while executor.in_flight < executor.capacity and budget_left():
                    number = len(records)
                    arch = self.strategy.ask()
                    rec = TrialRecord(number, arch, RUNNING, trial_seed(self.seed, number), ask_event=event)
                    self.store.add_trial(number, arch, rec.seed, event)
                    event += 1
                    records[number] = rec
                    executor.submit(Job(number, arch, rec.seed))
                if executor.in_flight == 0:
                    break
                for job, result in executor.wait():
                    rec = records[job.trial]
                    if result.retryable and retried.get(rec.number, 0) < retries:  # the worker died: run again
                        retried[rec.number] = retried.get(rec.number, 0) + 1
                        self.store.restart_trial(rec.number, note=result.error)
                        executor.submit(job)
                        continue
                    rec = self._record(rec, result, event, elapsed())
                    event += 1
                    finished += 1
                    if rec.status == "ok" and (best is None or rec.value > best.value):
                        best = rec
                        if result.state_dict is not None:
                            weights = {rec.number: result.state_dict}
                        self._write_best(best, weights)
                    if on_trial is not None:
                        on_trial(Progress(finished, self.budget, elapsed(), best, rec))
        finally:
            executor.close()
        self._finalize(best, weights, evaluator)
        return self.summary()

    def _record(self, rec: TrialRecord, result: Result, event: int, elapsed: float) -> TrialRecord:
        score = self.objective.score(result)
        rec.status, rec.value, rec.values = score.status, score.value, score.values
        rec.metrics, rec.error, rec.tell_event = dict(result.metrics), result.error, event
        self.store.finish_trial(rec.number, rec.status, rec.value, rec.values, rec.metrics, rec.error, event,
                                extra_meta={"elapsed_seconds": elapsed})
        rec.finished = time.time()
        self.strategy.tell(self._observation(rec))
        return rec

    @staticmethod
    def _observation(rec: TrialRecord) -> Observation:
        return Observation(rec.arch, rec.value if rec.status == "ok" or rec.status == "infeasible" else None,
                           rec.values, rec.status != "infeasible", rec.metrics, rec.number)

    def _replay(self) -> list[TrialRecord]:
        """Feed the stored history to the fresh strategy in the original ask/tell order; return trials to re-run."""
        recs = self.store.trials()
        events: list[tuple[int, str, TrialRecord]] = [(r.ask_event, "ask", r) for r in recs]
        events += [(r.tell_event, "tell", r) for r in recs if r.done and r.tell_event is not None]
        for _, kind, rec in sorted(events, key=lambda e: e[0]):
            if kind == "ask":
                asked = self.strategy.ask()
                if asked != rec.arch:  # a strategy that is not replay-exact: keep the stored architecture pending
                    self.strategy.pending.pop(asked, None)
                    self.strategy.pending[rec.arch] = self.strategy.pending.get(rec.arch, 0) + 1
            else:
                self.strategy.tell(self._observation(rec))
        return [r for r in recs if not r.done]

    def _next_event(self) -> int:
        row = self.store.conn.execute("SELECT MAX(MAX(ask_event), COALESCE(MAX(tell_event), -1)) FROM trials")
        got = row.fetchone()[0]
        return 0 if got is None else int(got) + 1

    @staticmethod
    def _best(recs) -> TrialRecord | None:
        ok = [r for r in recs if r.status == "ok" and r.value is not None]
        return max(ok, key=lambda r: (r.value, -r.number)) if ok else None

    # ---- outputs ----------------------------------------------------------------------------------------------
    def _write_best(self, best: TrialRecord, weights: dict[int, dict]) -> None:
        state = weights.get(best.number)
        if state is not None:
            tmp = self.run_dir / (BEST_WEIGHTS + ".tmp")
            torch.save(state, tmp)
            os.replace(tmp, self.run_dir / BEST_WEIGHTS)
            has_weights = True
        else:
            has_weights = self._weights_trial() == best.number
            if not has_weights:
                (self.run_dir / BEST_WEIGHTS).unlink(missing_ok=True)  # never leave another trial's weights
        doc = {"trial": best.number, "architecture": best.arch.to_dict(), "text": self.space.format(best.arch),
               "value": best.value, "objective": self.objective.describe(),
               "val_accuracy": best.metrics.get("val_accuracy"), "test_accuracy": best.metrics.get("test_accuracy"),
               "metrics": best.metrics, "weights": BEST_WEIGHTS if has_weights else None,
               "space": {"name": self.spec.space, "config": self.spec.space_config}}
        tmp = self.run_dir / (BEST_JSON + ".tmp")
        tmp.write_text(json.dumps(doc, indent=2, default=float))
        os.replace(tmp, self.run_dir / BEST_JSON)

    def _weights_trial(self) -> int | None:
        try:
            doc = json.loads((self.run_dir / BEST_JSON).read_text())
            return doc["trial"] if doc.get("weights") else None
        except (OSError, ValueError, KeyError):
            return None

    def _finalize(self, best: TrialRecord | None, weights: dict[int, dict], evaluator: Any) -> None:
        """Make sure best.json and best.pt describe the best finished trial (after a crash the weights of the best
        trial may be missing: re-evaluate it with its own seed, which reproduces it)."""
        if best is None:
            return
        if best.number in weights or self._weights_trial() == best.number:
            self._write_best(best, weights)
            return
        result = None
        if getattr(evaluator, "keep_weights", False):
            result = evaluator.evaluate(best.arch, best.seed, best.fidelity)
        self._write_best(best, {best.number: result.state_dict} if result and result.state_dict else {})

    def summary(self) -> "StudySummary":
        return summarize(self.run_dir)


@dataclass
class StudySummary:
    run_dir: Path
    config: dict[str, Any]
    trials: list[TrialRecord]
    best: TrialRecord | None
    counts: dict[str, int]
    elapsed_seconds: float

    def to_dict(self, space: SearchSpace | None = None) -> dict[str, Any]:
        best = None
        if self.best is not None:
            b = self.best
            best = {"trial": b.number, "architecture": b.arch.to_dict(),
                    "text": space.format(b.arch) if space is not None else str(b.arch), "value": b.value,
                    "val_accuracy": b.metrics.get("val_accuracy"), "test_accuracy": b.metrics.get("test_accuracy"),
                    "metrics": b.metrics}
        return {"run_dir": str(self.run_dir), "best": best, "trials": self.counts,
                "n_trials": len(self.trials), "elapsed_seconds": self.elapsed_seconds, "config": self.config}


def summarize(run_dir: str | Path) -> StudySummary:
    if not RunStore.is_run(run_dir):
        raise UserError(f"{run_dir} is not an archsearch run directory (no study.db)")
    store = RunStore(run_dir)
    try:
        trials = store.trials()
        return StudySummary(Path(run_dir), store.get_meta("config", {}), trials, Study._best(trials), store.counts(),
                            float(store.get_meta("elapsed_seconds", 0.0)))
    finally:
        store.close()


def space_of(summary: StudySummary) -> SearchSpace:
    sp = summary.config.get("space", {})
    return get_space(sp.get("name", "macro"), **sp.get("config", {}))


def load_architecture(space: SearchSpace, text: str) -> Architecture:
    """Read an architecture for ``space`` from a file (architecture JSON, or a run's best.json), inline JSON,
    or the space's own text form."""
    if _is_file(text):
        text = Path(text).read_text()
        try:
            doc = json.loads(text)
            if isinstance(doc, dict) and isinstance(doc.get("architecture"), dict):
                text = json.dumps(doc["architecture"])
        except ValueError:
            pass
    return space.parse(text)


def _is_file(text: str) -> bool:
    try:
        return len(text) < 4096 and Path(text).is_file()
    except OSError:  # a long JSON string is not a file name
        return False
