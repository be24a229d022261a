"""The study: ask -> evaluate (through an executor) -> tell -> store, within a budget; resumable from its run
directory alone.

A scheduler (schedulers.py) decides whether a free worker starts a new trial or continues a paused one to the
next rung; the strategy (the searcher) is told each trial once, at its first result. Constraints on costs known
before training (params, FLOPs, a latency table's prediction) reject a candidate at ask time. Every search
also trains the space's hand-designed reference with the same evaluator, seed and fidelity, and (``warm_start``)
tells the strategy its result as a known-good first observation, as Optuna's ``enqueue_trial`` seeds a study with
a configuration a person chose: the reference is never a trial, so it is never "found", but the search starts
from it. Its tell is an event of the ask/tell order like any other (stored with the reference), so a resumed
search replays it in place; with results told in ask order it is told first, before any trial.

Resume replays the stored ask/tell events into a fresh strategy built with the same seed (strategies are
deterministic, so the replayed asks reproduce the stored architectures), rebuilds the scheduler from the stored
rungs, re-queues the trials that were running when the driver died (a promoted trial from its checkpoint), and
continues to the original budget.
"""
from __future__ import annotations

import json
from collections import deque
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .errors import UserError
from .evaluators import EVALUATORS, EvaluatorSpec
from .executors import EXECUTORS, Executor, Job
from .objective import MetricObjective, Score, objective_from_config
from .result import Observation, Result
from .space import Architecture, SearchSpace
from .spaces import get_space
from .schedulers import Scheduler, epochs_value, make_scheduler
from .rundir import BEST_JSON, BEST_WEIGHTS, atomic_save, default_run_dir, new_run_dir, read_config, start_run, write_best  # noqa: F401 (re-exported)
from .runlock import acquire
from .storage import RUNNING, RunStore, TrialRecord
from .step import observation, score
from .strategies import Strategy, make_strategy
from .summary import StudySummary, best_trial, load_architecture, space_of, summarize  # noqa: F401 (re-exported)

REFERENCE = -1  # the job number of the hand-designed reference
#: costs an evaluator knows before training (``static_metrics``): constraints on them are checked at ask time
STATIC_METRICS = ("params", "flops", "macs", "predicted_latency_ms")


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
    # "tell": results reach the strategy in ask order (see Study._start_in_order); runs stored before this key
    # existed tell in arrival order when resumed
    out: dict[str, Any] = {"name": executor, "retries": retries, "tell": "ask-order"}
    if threads is not None:
        out["threads"] = threads
    if executor != "inline":
        out.update(workers=workers, trial_timeout=trial_timeout)
    if address:
        out["address"] = address
    return out


def check_scheduler(name: str, evaluator: str, evaluator_options: dict[str, Any], min_epochs: float | None,
                    eta: int, objective: Any, strategy: str) -> dict[str, Any]:
    """The scheduler settings a run stores (``fifo`` with no options is today's fixed-epoch search)."""
    if name == "fifo":
        if min_epochs is not None:
            raise UserError("--min-epochs is for a multi-fidelity --scheduler (asha, hyperband, sh, bohb, median)")
        return {"name": "fifo"}
    from .evaluators import fidelities
    if "epochs" not in fidelities(evaluator):
        raise UserError(f"--scheduler {name} needs an evaluator that trains by epochs (train); "
                        f"{evaluator} has one fidelity")
    if getattr(objective, "goals", None) is not None:
        raise UserError(f"--scheduler {name} ranks one value per trial; a multi-objective search uses fifo")
    if name == "bohb" and strategy != "bo":
        raise UserError(f"--scheduler bohb is Hyperband with the bo searcher; got --strategy {strategy} "
                        "(use --scheduler hyperband for other strategies)")
    max_epochs = int(evaluator_options.get("epochs", 10))
    first = 1 if min_epochs is None else min_epochs  # (0 is out of range, not "the default")
    cfg = {"name": name, "max_epochs": max_epochs, "min_epochs": epochs_value(first), "eta": int(eta)}
    make_scheduler(name, max_epochs, cfg["min_epochs"], cfg["eta"])  # a fidelity out of range fails here
    return cfg


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
    scheduling: dict[str, Any] = field(default_factory=lambda: {"name": "fifo"})
    reference: bool = False
    warm_start: bool = False
    store: RunStore = field(init=False)

    # ---- construction -----------------------------------------------------------------------------------------
    @classmethod
    def create(cls, *, space: str, strategy: str, evaluator: str, budget: Budget, seed: int = 0,
               space_config: dict | None = None, strategy_options: dict | None = None,
               evaluator_options: dict | None = None, objective: MetricObjective | None = None,
               run_dir: str | Path | None = None, executor: str = "inline", workers: int | None = None,
               address: str | None = None, retries: int = 0, trial_timeout: float | None = None,
               threads: int | None = None, scheduler: str = "fifo", min_epochs: float | None = None,
               eta: int = 3, reference: bool = True, warm_start: bool = True) -> "Study":
        """``threads``: CPU threads of each worker (default: the cores shared out among the workers);
        ``scheduler``/``min_epochs``/``eta``: multi-fidelity scheduling (rungs of epochs up to the evaluator's
        epochs); ``reference``: also train the space's hand-designed reference architecture; ``warm_start``: and tell
        the strategy its result (the strategy's first observation; see the module's docstring)."""
        space_config, strategy_options = dict(space_config or {}), dict(strategy_options or {})
        evaluator_options = dict(evaluator_options or {})
        objective = objective or MetricObjective()
        sp = get_space(space, **space_config)
        EVALUATORS.get(evaluator)  # an unknown name is one line before the run directory exists
        try:
            strat = make_strategy(strategy, sp, seed=seed, **strategy_options)
        except ValueError as e:  # a bad option value: the strategies say which in their message
            raise UserError(str(e)) from None
        except TypeError as e:
            if not strategy_options:
                raise
            raise UserError(f"--strategy-opt: {e}") from None  # an option the strategy does not have
        execution = check_execution(executor, workers, address, retries, trial_timeout, threads)
        scheduling = check_scheduler(scheduler, evaluator, evaluator_options, min_epochs, eta, objective, strategy)
        spec = EvaluatorSpec(space, space_config, evaluator, evaluator_options)
        run_dir = new_run_dir(run_dir, space, strategy)
        reference = bool(reference) and _reference_of(sp) is not None
        warm_start = reference and bool(warm_start)
        study = cls(run_dir, sp, strat, spec, objective, budget, seed, execution, scheduling, reference, warm_start)
        study._check_feasible()
        study.store, study.run_lock, _ = start_run(run_dir, {
            "space": {"name": space, "config": space_config},
            "strategy": {"name": strategy, "options": strategy_options},
            "evaluator": {"name": evaluator, "options": evaluator_options},
            "objective": objective.config(), "budget": {"trials": budget.trials, "seconds": budget.seconds},
            "seed": seed, "executor": execution, "scheduler": scheduling, "reference": reference,
            "warm_start": warm_start,
        })
        return study

    @classmethod
    def resume(cls, run_dir: str | Path) -> "Study":
        run_dir = Path(run_dir)
        cfg = read_config(run_dir)  # read before locking: a run in use is refused with its holder
        sp = get_space(cfg["space"]["name"], **cfg["space"]["config"])
        strat = make_strategy(cfg["strategy"]["name"], sp, seed=cfg["seed"], **cfg["strategy"]["options"])
        spec = EvaluatorSpec(cfg["space"]["name"], cfg["space"]["config"], cfg["evaluator"]["name"],
                             cfg["evaluator"]["options"])
        budget = Budget(cfg["budget"]["trials"], cfg["budget"]["seconds"])
        study = cls(run_dir, sp, strat, spec, objective_from_config(cfg["objective"]), budget, cfg["seed"],
                    cfg.get("executor", {"name": "inline"}), cfg.get("scheduler", {"name": "fifo"}),
                    bool(cfg.get("reference", False)), bool(cfg.get("warm_start", False)))
        study._lock()
        study.store = RunStore(run_dir)
        return study

    def _lock(self) -> None:
        """One writer per run directory (a second search on it is refused, naming the holder)."""
        self.run_lock = acquire(self.run_dir)

    def _scheduler(self) -> Scheduler:
        s = self.scheduling
        if s.get("name", "fifo") == "fifo":
            return Scheduler(max_epochs=0)
        return make_scheduler(s["name"], s["max_epochs"], s["min_epochs"], s["eta"], seed=self.seed)

    # ---- costs known before training ----------------------------------------------------------------------------
    def _static_constraints(self) -> list[Any]:
        return [c for c in getattr(self.objective, "constraints", ()) if c.metric in STATIC_METRICS]

    def _rejected(self, evaluator: Any, arch: Architecture, seed: int) -> dict[str, float] | None:
        """The static metrics of ``arch`` when they violate a constraint (it is not trained), else None."""
        constraints = self._static_constraints()
        if not constraints or not hasattr(evaluator, "static_metrics"):
            return None
        try:
            metrics = evaluator.static_metrics(arch, seed)
        except Exception:  # noqa: BLE001 - a model that fails to build fails as a trial, in training
            return None
        return metrics if any(c.satisfied(metrics) is False for c in constraints) else None

    def _check_feasible(self, sample: int = 48) -> None:
        """A constraint that none of ``sample`` random architectures satisfies is one line, not minutes of
        training."""
        constraints = self._static_constraints()
        if not constraints:
            return
        evaluator = self.spec.build()
        if not hasattr(evaluator, "static_metrics"):
            return
        rng = np.random.default_rng(np.random.SeedSequence([int(self.seed), 4099]))
        best: dict[str, float] = {}
        for _ in range(sample):
            metrics = evaluator.static_metrics(self.space.sample(rng))
            if all(c.satisfied(metrics) is not False for c in constraints):
                return
            for c in constraints:
                v = metrics.get(c.metric)
                if v is not None:
                    best[c.metric] = min(best.get(c.metric, v), v) if "<" in c.op else max(best.get(c.metric, v), v)
        seen = ", ".join(f"{k} {v:,.0f}" for k, v in best.items())
        raise UserError(f"no architecture among {sample} sampled satisfies {', '.join(map(str, constraints))} "
                        f"(best seen: {seen}); relax the constraint or change the space")

    # ---- the loop ---------------------------------------------------------------------------------------------
    def run(self, on_trial: Callable[[Progress], None] | None = None,
            started: float | None = None) -> "StudySummary":
        """Ask, evaluate, tell and store until the budget ends: workers are kept busy with new trials or
        promotions (:meth:`_start_work`), and every finished job is recorded before the next is asked
        (:meth:`_take_results`). ``started``: when the user's clock began (a ``time.time()``; the CLI gives its
        process's start), so that a seconds budget also covers start-up (imports, data, worker processes);
        default: now."""
        loop = self._open_loop(on_trial, started)
        try:
            ref = loop.reference = self.store.get_meta("reference")
            if self.reference and ref is None and loop.time_left():
                ref_fid = None if not loop.sched.multi_fidelity else loop.sched.max_epochs
                loop.executor.submit(loop.job(REFERENCE, _reference_of(self.space), trial_seed(self.seed, 0),
                                              ref_fid))
                if self.warm_start and loop.lag:
                    loop.untold.appendleft(REFERENCE)  # told first, whenever it finishes
            elif self.warm_start and loop.lag and ref is not None and "start_event" not in ref:
                loop.untold.appendleft(REFERENCE)  # finished, not yet told: no trial has been told either
            for rec in loop.requeue:
                self.store.restart_trial(rec.number)
                loop.executor.submit(loop.job(rec.number, rec.arch, rec.seed, rec.fidelity))
            while True:
                self._start_work(loop)
                if loop.executor.in_flight == 0:
                    break
                self._take_results(loop)
        finally:
            loop.executor.close()
        for job in loop.queue:  # asked ahead, never started: the budget ended first
            self.store.discard_trial(job.trial)
            loop.records.pop(job.trial, None)
        self._finalize(loop.best, loop.weights, loop.evaluator, loop.sched)
        self.release()
        return self.summary()

    def _open_loop(self, on_trial: Callable[[Progress], None] | None, started: float | None = None) -> "_Loop":
        evaluator = self.spec.build()
        ex = dict(self.execution)
        retries = int(ex.pop("retries", 0) or 0)
        in_order = ex.pop("tell", "arrival") == "ask-order"
        executor: Executor = EXECUTORS.get(ex.pop("name"))(evaluator=evaluator, **ex)
        sched = self._scheduler()
        requeue = self._replay(sched)
        records = {r.number: r for r in self.store.trials()}
        rejected = {r.number for r in records.values() if r.status == "infeasible" and r.metrics.get("rejected")}
        elapsed0 = float(self.store.get_meta("elapsed_seconds", 0.0))
        since = on_clock(started)
        t0 = time.perf_counter() - since
        deadline = None if self.budget.seconds is None else time.time() + self.budget.seconds - elapsed0 - since
        loop = _Loop(self, evaluator, executor, sched, retries, requeue, records, rejected,
                     best_trial(records.values()), self._next_event(), elapsed0, t0, deadline, on_trial)
        if in_order and not sched.multi_fidelity and getattr(self.strategy, "reads_results", True):
            loop.lag = 1 if executor.capacity == 1 else 2 * executor.capacity
            loop.untold = deque(sorted(n for n, r in records.items() if r.tell_event is None and n not in rejected))
        return loop

    def _start_work(self, loop: "_Loop") -> None:
        """Fill the free workers: a promotion the scheduler asks for, else a new trial from the strategy (one
        whose known costs break a constraint is told infeasible at once, without training)."""
        if loop.lag:
            self._start_in_order(loop)
            return
        sched, executor, records = loop.sched, loop.executor, loop.records
        while executor.in_flight < executor.capacity and loop.time_left():
            d = sched.next(loop.may_start_new(), len(records))
            if d is None:
                break
            fid = d.fidelity if sched.multi_fidelity else None
            if d.trial is not None:  # a promotion: continue from the checkpoint
                rec = records[d.trial]
                if not loop.fits(rec, d.fidelity):  # it cannot reach its next rung in the budget: never promoted
                    sched.fail(rec.number)
                    continue
                self.store.promote_trial(rec.number, fid)
                rec.status, rec.fidelity = RUNNING, fid
                sched.started(rec.number, d.fidelity, d.bracket)
                executor.submit(loop.job(rec.number, rec.arch, rec.seed, fid))
                continue
            job = self._ask_new(loop, fid, d.fidelity, d.bracket)
            if job is not None:
                executor.submit(job)

    def _ask_new(self, loop: "_Loop", fid: float | None, level: int, bracket: int) -> Job | None:
        """Ask the strategy for a new trial and store it; return its job, or None when its known costs break a
        constraint (then it is told infeasible at once, at no cost, and never trained)."""
        records = loop.records
        number = max(records) + 1 if records else 0
        arch = self.strategy.ask()
        rec = TrialRecord(number, arch, RUNNING, trial_seed(self.seed, number), ask_event=loop.event, fidelity=fid)
        self.store.add_trial(number, arch, rec.seed, loop.event, fidelity=fid, bracket=bracket)
        loop.event += 1
        records[number] = rec
        static = self._rejected(loop.evaluator, arch, rec.seed)
        if static is not None:
            loop.rejected.add(number)
            loop.misses += 1
            self._record(rec, Result({**static, "rejected": 1.0}), loop.event, loop.elapsed(), loop.sched, None)
            loop.event += 1
            return None
        loop.misses = 0
        loop.sched.started(number, level, bracket)
        return loop.job(number, arch, rec.seed, fid)

    def _start_in_order(self, loop: "_Loop") -> None:
        """Parallel workers with results told in ask order, so that a seed gives the same search whatever order
        the workers finish in: a new trial is asked whenever fewer than ``loop.lag`` trained trials wait for
        their tell, and the oldest waiting trial is told as soon as it is done (each tell followed by its ask:
        the same sequence of asks and tells in every run). The lag is twice the workers, so a slow trial holds
        up its successors' tells without idling the other workers; trials asked ahead wait in ``loop.queue``."""
        records = loop.records
        while True:
            while len(loop.untold) < loop.lag and loop.time_left() and loop.may_start_new():
                job = self._ask_new(loop, None, 0, 0)
                if job is not None:
                    loop.untold.append(job.trial)
                    loop.queue.append(job)
            if loop.untold and loop.untold[0] == REFERENCE:
                if loop.reference is None:
                    break  # still training: every trial's tell waits for it
                loop.untold.popleft()
                self._tell_reference(loop)
                continue
            if loop.untold and records[loop.untold[0]].done:
                self._tell_stored(loop, records[loop.untold.popleft()])
                continue
            break
        while loop.queue and loop.executor.in_flight < loop.executor.capacity and loop.time_left():
            job = loop.queue.popleft()
            self.store.mark_started(job.trial)
            loop.executor.submit(job)

    def _tell_stored(self, loop: "_Loop", rec: TrialRecord) -> None:
        """Tell the strategy a result stored earlier (results told in ask order)."""
        rec.tell_event = loop.event
        self.store.set_tell_event(rec.number, loop.event)
        loop.event += 1
        self.strategy.tell(self._observation(rec))

    def _take_results(self, loop: "_Loop") -> None:
        """Record every job that finished (a worker that died runs its job again, up to ``retries`` times), keep
        the best's weights, and report progress."""
        for jb, result in loop.executor.wait():
            if jb.trial == REFERENCE:
                loop.reference = self._record_reference(jb, result)
                if self.warm_start and not loop.lag:
                    self._tell_reference(loop)
                continue
            rec = loop.records[jb.trial]
            if result.retryable and loop.retried.get(rec.number, 0) < loop.retries:  # the worker died: run again
                loop.retried[rec.number] = loop.retried.get(rec.number, 0) + 1
                self.store.restart_trial(rec.number, note=result.error)
                loop.executor.submit(jb)
                continue
            told = not loop.lag and rec.tell_event is None  # (in ask order: told by _start_in_order)
            rec = self._record(rec, result, loop.event, loop.elapsed(), loop.sched, jb.fidelity, tell=not loop.lag)
            loop.event += int(told)
            if rec.status == "ok" and (loop.best is None or best_trial([loop.best, rec]) is rec):
                loop.best = rec
                if result.state_dict is not None:
                    loop.weights = {rec.number: result.state_dict}
                self._write_best(loop.best, loop.weights)
            if loop.on_trial is not None:
                finished = sum(1 for r in loop.records.values() if r.done) - len(loop.rejected)
                loop.on_trial(Progress(finished, self.budget, loop.elapsed(), loop.best, rec))

    def release(self) -> None:
        """Give up the run directory (another process may resume it now)."""
        if getattr(self, "run_lock", None) is not None:
            self.run_lock.release()
            self.run_lock = None

    def _record(self, rec: TrialRecord, result: Result, event: int, elapsed: float, sched: Scheduler,
                fidelity: float | None, tell: bool = True) -> TrialRecord:
        """Store a trial's (or a rung's) result with its learning curve; tell the strategy at its first result
        (``tell=False``: stored now, told later, in ask order)."""
        s = score(self.objective, result)  # stopped by the budget: no value; rejected at ask time: infeasible
        status, value, values = s.status, s.value, s.values
        first = tell and rec.tell_event is None
        loss = result.metrics.get("val_loss")
        tiebreak = -float(loss) if isinstance(loss, (int, float)) and loss == loss else 0.0
        rung = (float(fidelity), tiebreak) if sched.multi_fidelity and fidelity is not None and status == "ok" \
            else None
        rec.status, rec.value, rec.values = status, value, values
        rec.metrics, rec.error = dict(result.metrics), result.error
        if first:
            rec.tell_event = event
        self.store.finish_trial(rec.number, rec.status, rec.value, rec.values, rec.metrics, rec.error,
                                event if first else None, extra_meta={"elapsed_seconds": elapsed},
                                curve=result.curve, rung=rung, fidelity=fidelity)
        rec.finished = time.time()
        if sched.multi_fidelity:
            if rung is not None:
                sched.report(rec.number, float(fidelity), (float(value), tiebreak))
            else:
                sched.fail(rec.number)
        if first:
            self.strategy.tell(self._observation(rec))
        return rec

    def _record_reference(self, job: Job, result: Result) -> dict[str, Any]:
        """Store the reference's result in the run's meta; return what was stored."""
        s = score(self.objective, result)
        arch = job.arch
        ref = {"architecture": arch.to_dict(), "text": self.space.format(arch), "status": s.status,
               "value": s.value, "metrics": dict(result.metrics), "error": result.error,
               "fidelity": job.fidelity, "curve": result.curve}
        self.store.set_meta("reference", ref)
        return ref

    def _tell_reference(self, loop: "_Loop") -> None:
        """Tell the strategy the reference's result as its next event (a warm start), and store that event."""
        ref = dict(loop.reference)
        obs = self._reference_observation(ref, loop.sched)
        ref["start_event"] = None if obs is None else loop.event
        self.store.set_meta("reference", ref)
        loop.reference = ref
        if obs is not None:
            loop.event += 1
            self.strategy.tell(obs)

    def _reference_observation(self, ref: dict[str, Any], sched: Scheduler) -> Observation | None:
        """What the strategy is told of the reference: its result scored as a trial's would be; in a
        multi-fidelity search its result at the first rung (read off its learning curve), which is what the
        strategy is told of every trial. None when it has no result to tell (failed, stopped by the budget)."""
        if ref.get("status") not in ("ok", "infeasible"):
            return None
        metrics = dict(ref.get("metrics") or {})
        if sched.multi_fidelity:
            point = next((c for c in ref.get("curve") or [] if sched.rung(c.get("epoch", -1), -1) == 0), None)
            if point is None:
                return None
            metrics.update({k: v for k, v in point.items() if k not in ("epoch", "seconds")})
        return observation(Architecture(ref["architecture"]), score(self.objective, Result(metrics=metrics)),
                           metrics, None)

    @staticmethod
    def _observation(rec: TrialRecord) -> Observation:
        return observation(rec.arch, Score(rec.status, rec.value, rec.values), rec.metrics, rec.number)

    def _replay(self, sched: Scheduler) -> list[TrialRecord]:
        """Feed the stored history to the fresh strategy in the original ask/tell order (a trial told at its
        first rung is told that rung's result again) and rebuild the scheduler; return trials to re-run."""
        recs = self.store.trials()
        rungs = self.store.rungs()
        first = {}
        for t, fid, value, _, metrics in rungs:
            first.setdefault(t, (fid, value, metrics))
        events: list[tuple[int, str, Any]] = [(r.ask_event, "ask", r) for r in recs]
        events += [(r.tell_event, "tell", r) for r in recs if r.tell_event is not None]
        ref = self.store.get_meta("reference")
        if self.warm_start and ref is not None and ref.get("start_event") is not None:
            events.append((int(ref["start_event"]), "reference", self._reference_observation(ref, sched)))
        for _, kind, rec in sorted(events, key=lambda e: e[0]):
            if kind == "reference":
                self.strategy.tell(rec)
            elif kind == "ask":
                asked = self.strategy.ask()
                if asked != rec.arch:  # a strategy that is not replay-exact: keep the stored architecture pending
                    self.strategy.pending.pop(asked, None)
                    self.strategy.pending[rec.arch] = self.strategy.pending.get(rec.arch, 0) + 1
            else:
                told = rec
                if rec.number in first:  # the result the strategy was told then: the trial's first rung
                    fid, value, metrics = first[rec.number]
                    told = TrialRecord(rec.number, rec.arch, "ok", rec.seed, value, None, metrics)
                self.strategy.tell(self._observation(told))
        if sched.multi_fidelity:
            self._replay_scheduler(sched, recs, rungs)
        return [r for r in recs if not r.done]

    def _replay_scheduler(self, sched: Scheduler, recs: list[TrialRecord], rungs: list[tuple]) -> None:
        brackets = self.store.brackets()
        started: set[int] = set()
        for t, fid, value, tiebreak, _ in rungs:
            if t not in started or sched.where.get(t, (0, -1))[1] < sched.rung(fid):
                sched.started(t, float(fid), brackets.get(t, 0))
                started.add(t)
            sched.report(t, float(fid), (float(value), float(tiebreak or 0.0)))
        for r in recs:
            if r.status == RUNNING and r.fidelity is not None:
                sched.started(r.number, float(r.fidelity), brackets.get(r.number, 0))
            elif r.status in ("failed", "stopped"):
                sched.where.setdefault(r.number, (brackets.get(r.number, 0), 0))
                sched.fail(r.number)

    def _next_event(self) -> int:
        row = self.store.conn.execute("SELECT MAX(MAX(ask_event), COALESCE(MAX(tell_event), -1)) FROM trials")
        got = row.fetchone()[0]
        ref = self.store.get_meta("reference") or {}
        got = max(-1 if got is None else int(got), int(ref.get("start_event") if ref.get("start_event") is not None
                                                        else -1))
        return got + 1

    # ---- outputs ----------------------------------------------------------------------------------------------
    def _write_best(self, best: TrialRecord, weights: dict[int, dict]) -> None:
        state = weights.get(best.number)
        if state is not None:
            atomic_save(state, self.run_dir / BEST_WEIGHTS)
            has_weights = True
        else:
            has_weights = self._weights_trial() == best.number
            if not has_weights:
                (self.run_dir / BEST_WEIGHTS).unlink(missing_ok=True)  # never leave another trial's weights
        doc = {"trial": best.number, "architecture": best.arch.to_dict(), "text": self.space.format(best.arch),
               "value": best.value, "objective": self.objective.describe(),
               "val_accuracy": best.metrics.get("val_accuracy"), "test_accuracy": best.metrics.get("test_accuracy"),
               "metrics": best.metrics, "weights": BEST_WEIGHTS if has_weights else None,
               "fidelity": best.fidelity, "space": {"name": self.spec.space, "config": self.spec.space_config}}
        write_best(self.run_dir, doc)

    def _weights_trial(self) -> int | None:
        try:
            doc = json.loads((self.run_dir / BEST_JSON).read_text())
            return doc["trial"] if doc.get("weights") else None
        except (OSError, ValueError, KeyError):
            return None

    def _finalize(self, best: TrialRecord | None, weights: dict[int, dict], evaluator: Any,
                  sched: Scheduler) -> None:
        """Make sure best.json and best.pt describe the best finished trial (after a crash the weights of the best
        trial may be missing: re-evaluate it with its own seed, which reproduces it — a multi-fidelity trial
        from its checkpoint, without training again)."""
        if best is None:
            return
        if best.number in weights or self._weights_trial() == best.number:
            self._write_best(best, weights)
            return
        result = None
        if getattr(evaluator, "keep_weights", False):
            if sched.multi_fidelity:
                ckpt = self.run_dir / "checkpoints" / f"trial-{best.number}.pt"
                result = evaluator.evaluate(best.arch, best.seed, best.fidelity, checkpoint=str(ckpt),
                                            horizon=sched.max_epochs)
            else:
                result = evaluator.evaluate(best.arch, best.seed, best.fidelity)
        self._write_best(best, {best.number: result.state_dict} if result and result.state_dict else {})

    def summary(self) -> "StudySummary":
        return summarize(self.run_dir)


@dataclass
class _Loop:
    """The state of one :meth:`Study.run`: the parts it built, the trials so far, the event counter and the clock."""

    study: Study
    evaluator: Any
    executor: Executor
    sched: Scheduler
    retries: int
    requeue: list[TrialRecord]
    records: dict[int, TrialRecord]
    rejected: set[int]
    best: TrialRecord | None
    event: int
    elapsed0: float
    t0: float
    deadline: float | None
    on_trial: Callable[[Progress], None] | None
    weights: dict[int, dict] = field(default_factory=dict)
    retried: dict[int, int] = field(default_factory=dict)
    misses: int = 0  # asks in a row rejected at ask time
    lag: int = 0  # results told in ask order: at most this many trained trials wait for their tell (0: arrival)
    untold: deque = field(default_factory=deque)  # trained trials asked and not yet told, in ask order
    queue: deque = field(default_factory=deque)  # jobs asked ahead, waiting for a free worker
    reference: dict[str, Any] | None = None  # the reference's stored result, once it has one

    def elapsed(self) -> float:
        return self.elapsed0 + time.perf_counter() - self.t0

    def time_left(self) -> bool:
        return self.study.budget.seconds is None or self.elapsed() < self.study.budget.seconds

    def fits(self, rec: TrialRecord, fidelity: float) -> bool:
        """Whether a seconds budget leaves time to continue ``rec`` to ``fidelity`` epochs, at the seconds per
        epoch it has trained at so far (a promotion that the budget would stop wastes the end of the run on a
        partial curve; a new trial at the first rung is the better use of that time)."""
        seconds, done = self.study.budget.seconds, float(rec.metrics.get("epochs") or 0.0)
        if seconds is None or done <= 0 or "train_seconds" not in rec.metrics:
            return True
        per_epoch = float(rec.metrics["train_seconds"]) / done
        return self.elapsed() + per_epoch * (float(fidelity) - done) <= seconds

    def may_start_new(self) -> bool:
        trained = len(self.records) - len(self.rejected)
        trials = self.study.budget.trials
        return (trials is None or trained < trials) and self.misses < 1000

    def job(self, number: int, arch: Architecture, seed: int, fidelity: float | None) -> Job:
        if not getattr(self.evaluator, "resumable", False):
            return Job(number, arch, seed, fidelity)
        multi = self.sched.multi_fidelity  # (the reference too: its curve gives its first rung's result)
        name = "reference.pt" if number == REFERENCE else f"trial-{number}.pt"
        ckpt = str(self.study.run_dir / "checkpoints" / name) if multi else None
        return Job(number, arch, seed, fidelity, ckpt, self.deadline, self.sched.max_epochs if multi else None)


def on_clock(started: float | None) -> float:
    """Seconds already on the user's clock now, when it began at ``started`` (a ``time.time()``; None: now)."""
    return 0.0 if started is None else max(0.0, time.time() - float(started))


def _reference_of(space: SearchSpace) -> Architecture | None:
    """The space's hand-designed reference architecture (None when it names none)."""
    ref = getattr(space, "reference", None)
    try:
        return ref() if callable(ref) else None
    except Exception:  # noqa: BLE001 - a user's space whose reference fails: no reference, not a lost run
        return None
