"""The one-shot study: a supernet search run as a resumable study in a run directory.

Same run directory as a black-box study (``study.db``, ``best.json``, ``best.pt``), so ``archsearch show`` and
``archsearch.load`` read it unchanged, plus ``checkpoint.pt``. The steps:

1. search epochs; after each one the supernet, α, both optimisers, the generators' states and the strategy's own
   state go to ``checkpoint.pt`` (atomically), and the epoch's metrics, architecture weights and derived
   architecture to the ``epochs`` table; ``resume`` reloads the checkpoint and continues from the next epoch, so
   an interrupted search ends exactly where an uninterrupted one does;
2. derive the architecture;
3. evaluate it with the run's evaluator (by default: train it from scratch with the training evaluator) and store
   it as trial 0, the run's best.

Budget: ``epochs`` search epochs; ``seconds`` (optional) is the search's compute budget: NASIB sizes its run to it
(epochs = budget / time of one epoch), the other strategies stop after the epoch in which it runs out.
"""
from __future__ import annotations

import os
import time
from .runlock import acquire
from .safeload import safe_load
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from .errors import UserError
from .evaluators import EvaluatorSpec
from .datasets import cached_data
from .objective import objective_from_config, parse_objective
from .result import Result
from .space import Architecture
from .spaces import get_space
from .storage import RunStore, TrialRecord
from .rundir import BEST_WEIGHTS, atomic_save, new_run_dir, read_config, start_run, write_best
from .study import StudySummary, check_threads, on_clock, summarize, trial_seed
from .strategies.oneshot.distributed import SUPPORTED as DP_SUPPORTED, close_group, init_group
from .strategies.oneshot.ranks import launch
from .strategies.oneshot.base import ONESHOT, OneShotStrategy, make_oneshot, parse_options

CHECKPOINT = "checkpoint.pt"
#: Epochs the derived architecture is trained from scratch unless told otherwise (CLI and API).
DEFAULT_TRAIN_EPOCHS = 10
KIND = "oneshot"


@dataclass
class EpochProgress:
    """What the study reports after every search epoch (for progress bars and logs)."""

    epoch: int  # epochs done
    total: int  # epochs planned (NASIB knows it after its first, timed, epoch)
    metrics: dict[str, float]
    arch: Architecture | None
    elapsed: float


def is_oneshot_run(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds a one-shot run (its stored configuration says so)."""
    if not RunStore.is_run(run_dir):
        return False
    store = RunStore(run_dir)
    try:
        cfg = store.get_meta("config") or {}
    finally:
        store.close()
    return cfg.get("kind") == KIND or cfg.get("strategy", {}).get("name") in ONESHOT


class OneShotStudy:
    """Create with :meth:`create`, continue with :meth:`resume`, then :meth:`run`."""

    def __init__(self, run_dir: Path, store: RunStore, config: dict[str, Any]):
        self.run_dir, self.store, self.config = run_dir, store, config
        self._started: float | None = None  # when the user's clock began (see run)
        self.space = get_space(config["space"]["name"], **config["space"]["config"])
        self.strategy_name = config["strategy"]["name"]
        self.spec = EvaluatorSpec(config["space"]["name"], config["space"]["config"], config["evaluator"]["name"],
                                  config["evaluator"]["options"])
        self.objective = objective_from_config(config["objective"])

    # ---- construction -----------------------------------------------------------------------------------------
    @classmethod
    def create(cls, *, space: str, strategy: str, epochs: int, seed: int = 0, space_config: dict | None = None,
               strategy_options: dict | None = None, evaluator: str = "train", evaluator_options: dict | None = None,
               objective: Any = None, run_dir: str | Path | None = None, seconds: float | None = None,
               data: str | None = None, device: str | None = None, workers: int = 1, executor: str = "process",
               address: str | None = None, threads: int | None = None, transport: str = "auto",
               sync_bn: bool = True) -> "OneShotStudy":
        """``workers`` > 1: a data-parallel search over that many processes (``executor`` 'process' or 'ray',
        ``address`` of a Ray cluster; ``threads`` per process, default: the cores shared out; ``transport`` of
        the collectives: 'auto' = shared memory for local CPU processes, else 'dist' = torch.distributed;
        ``sync_bn`` False: every process normalises by its own slice's BatchNorm statistics, as DDP without
        SyncBatchNorm does — fewer collectives, but no longer the single-process computation)."""
        space_config, options = dict(space_config or {}), dict(strategy_options or {})
        cls_ = ONESHOT.get(strategy)
        workers = 1 if workers is None else int(workers)
        if workers < 1:
            raise UserError(f"--workers must be at least 1, got {workers}")
        check_threads(threads)
        if workers > 1 and strategy not in DP_SUPPORTED:
            raise UserError(f"a data-parallel one-shot search (--workers {workers}) supports "
                            f"{', '.join(DP_SUPPORTED)}; {strategy!r} runs with one worker")
        if transport not in ("auto", "shm", "dist") or (transport == "shm" and executor == "ray"):
            raise UserError(f"the data-parallel transport is auto, shm (process executor) or dist, not {transport!r}")
        if workers > 1 and executor not in ("process", "ray"):
            raise UserError(f"a data-parallel one-shot search runs on --executor process or ray, not {executor!r}")
        get_space(space, **space_config)
        if epochs < 1:
            raise UserError(f"a one-shot search needs at least one epoch, got {epochs}")
        if seconds is not None and seconds <= 0:
            raise UserError(f"the time budget must be positive, got {seconds}")
        if strategy == "nasib" and seconds is not None:
            options.setdefault("budget_seconds", seconds)
        parse_options(cls_.Options, strategy, options)  # an unknown option fails here, before the run exists
        objective = objective if objective is not None else parse_objective(None)
        spec = EvaluatorSpec(space, space_config, evaluator, dict(evaluator_options or {}))
        spec.build()  # a bad evaluator setting fails here too
        run_dir = new_run_dir(run_dir, space, strategy)
        config = {
            "kind": KIND,
            "space": {"name": space, "config": space_config}, "strategy": {"name": strategy, "options": options},
            "evaluator": {"name": evaluator, "options": spec.options}, "objective": objective.config(),
            "budget": {"epochs": int(epochs), "seconds": seconds, "trials": 1}, "seed": int(seed),
            "data": data, "device": device,
            "parallel": {"workers": workers, "executor": executor, "address": address, "transport": transport,
                         "sync_bn": bool(sync_bn),
                         "threads": threads or max(1, (os.cpu_count() or 1) // workers)},
        }
        store, lock, config = start_run(run_dir, config)  # one writer per run directory
        study = cls(run_dir, store, config)
        study.run_lock = lock
        return study

    @classmethod
    def resume(cls, run_dir: str | Path) -> "OneShotStudy":
        run_dir = Path(run_dir)
        config = read_config(run_dir)
        if config.get("kind") != KIND:
            raise UserError(f"{run_dir} is not a one-shot run")
        lock = acquire(run_dir)
        study = cls(run_dir, RunStore(run_dir), config)
        study.run_lock = lock
        return study

    @property
    def epochs_done(self) -> int:
        return len(self.store.epochs())

    # ---- the run ----------------------------------------------------------------------------------------------
    def make_strategy(self) -> OneShotStrategy:
        c = self.config
        return make_oneshot(self.strategy_name, self.space, cached_data(c.get("data")), c["budget"]["epochs"],
                            seed=c["seed"], device=c.get("device"), **c["strategy"]["options"])

    def run(self, on_epoch: Callable[[EpochProgress], None] | None = None,
            on_train: Callable[[Architecture], None] | None = None, started: float | None = None) -> StudySummary:
        """Search (from the last checkpoint, if any), derive, evaluate the derived architecture, store it.
        ``started``: when the user's clock began (``time.time()``; the CLI: its process's start), so that a
        seconds budget also covers start-up; default: when the search epochs begin."""
        self._started = started
        par = self.config.get("parallel") or {"workers": 1}
        try:
            if par["workers"] > 1:
                return self._run_parallel(par, on_epoch, on_train)
            return self._run(self.make_strategy(), on_epoch, on_train)
        finally:
            lock = getattr(self, "run_lock", None)
            if lock is not None:
                lock.release()
                self.run_lock = None

    def _run_parallel(self, par: dict[str, Any], on_epoch, on_train) -> StudySummary:
        """Rank 0 of a data-parallel search: start the other ranks, search with them, evaluate alone."""
        threads0 = torch.get_num_threads()
        torch.set_num_threads(par["threads"])
        try:
            strategy = self.make_strategy()
            self._load_checkpoint(strategy)
            ckpt = self.run_dir / CHECKPOINT
            ranks, addr, port = launch(par["executor"], par["workers"], self.config,
                                       str(ckpt.resolve()) if ckpt.exists() else None, par["threads"],
                                       par.get("address"), par.get("transport", "auto"))
            try:
                strategy.dp = init_group(0, par["workers"], addr, port, strategy.device, ranks.shared, ranks.alive)
                if par.get("sync_bn", True):
                    strategy.dp.sync_batchnorm(strategy.model)
                try:
                    self._search(strategy, on_epoch)
                    strategy.dp.go_on(False)
                finally:
                    close_group()
                    strategy.dp = None
                ranks.join()
            except BaseException:
                ranks.kill()
                raise
        finally:
            torch.set_num_threads(threads0)
        return self._run(strategy, on_epoch, on_train, searched=True)

    def _load_checkpoint(self, strategy: OneShotStrategy) -> None:
        ckpt = self.run_dir / CHECKPOINT
        self._elapsed0 = 0.0
        if ckpt.exists():
            state = safe_load(ckpt)
            strategy.load_state_dict(state["strategy"])
            self._elapsed0 = float(state["elapsed"])
            record = dict(state["record"])  # the architecture is stored as its dict (plain data, weights_only)
            record["arch"] = Architecture(record["arch"]) if record.get("arch") is not None else None
            self.store.add_epoch(**record, keep=True)  # in case the process died between the two writes
        self._t0 = time.perf_counter() - on_clock(self._started)

    def _elapsed(self) -> float:
        return self._elapsed0 + time.perf_counter() - self._t0

    def _search(self, strategy: OneShotStrategy, on_epoch) -> None:
        """The search epochs (from the loaded checkpoint), each checkpointed and recorded."""
        ckpt = self.run_dir / CHECKPOINT
        elapsed = self._elapsed
        cap = self.config["budget"].get("seconds")
        # the deadline is checked before every batch (a partial last epoch is recorded as such); NASIB also
        # sizes its schedule to the budget, the others fit their epochs to it after timing the first one
        strategy.deadline = None if cap is None else time.time() + cap - elapsed()
        while strategy.epoch < strategy.total_epochs and not (cap is not None and elapsed() >= cap):
            if strategy.dp is not None:
                strategy.dp.go_on(True)
            t_epoch = time.perf_counter()
            metrics = strategy.run_epoch()
            if strategy.partial:
                metrics["partial"] = 1.0
            elif cap is not None and strategy.epoch == 1 and self.strategy_name != "nasib":
                fit = max(1, int((cap - elapsed()) / max(1e-6, time.perf_counter() - t_epoch))) + 1
                if fit < strategy.total_epochs:  # the schedule (e.g. DARTS' cosine LR) spans what fits
                    strategy.total_epochs = fit
                    metrics["total_epochs"] = float(fit)
            arch = strategy.epoch_architecture()
            metrics["seconds"] = elapsed()
            alphas = strategy.supernet.probabilities() if strategy.searches_alpha else None
            record = {"epoch": strategy.epoch, "metrics": metrics, "alphas": alphas, "arch": arch,
                      "extra_meta": {"elapsed_seconds": elapsed(), "total_epochs": strategy.total_epochs}}
            atomic_save({"strategy": strategy.state_dict(), "elapsed": elapsed(),
                          "record": {**record, "arch": arch.to_dict() if arch is not None else None}}, ckpt)
            self.store.add_epoch(**record)
            if on_epoch is not None:
                on_epoch(EpochProgress(strategy.epoch, strategy.total_epochs, metrics, arch, elapsed()))
            if strategy.partial:  # the budget ended inside it (or the next step would have run past it)
                break

    def _run(self, strategy: OneShotStrategy, on_epoch, on_train, searched: bool = False) -> StudySummary:
        if not searched:
            self._load_checkpoint(strategy)
            self._search(strategy, on_epoch)
        elapsed = self._elapsed
        trials = self.store.trials()
        if not trials or not trials[0].done:
            self._evaluate(strategy, trials[0] if trials else None, elapsed, on_train)
        return summarize(self.run_dir)

    def _evaluate(self, strategy: OneShotStrategy, trial: TrialRecord | None, elapsed: Callable[[], float],
                  on_train: Callable[[Architecture], None] | None) -> None:
        arch = strategy.derive()
        search_seconds = elapsed()
        seed = trial_seed(self.config["seed"], 0)
        if trial is None:
            self.store.add_trial(0, arch, seed, ask_event=0)
        else:
            self.store.restart_trial(0)
        if on_train is not None:
            on_train(arch)
        # the last epoch that measured the supernet (an epoch the budget cut short did not)
        measured = [e.metrics["val_accuracy"] for e in self.store.epochs() if e.metrics.get("val_accuracy") is not None]
        try:
            result = self.spec.build().evaluate(arch, seed)
        except Exception as e:  # noqa: BLE001 - an evaluation that crashes is a failed trial, not a lost search
            result = Result.failure(f"{type(e).__name__}: {e}")
        metrics = {**result.metrics, "search_seconds": search_seconds, "search_epochs": float(strategy.epoch),
                   "supernet_val_accuracy": measured[-1] if measured else None}
        score = self.objective.score(Result(metrics, result.status, result.error))
        self.store.finish_trial(0, score.status, score.value, score.values, metrics, result.error, tell_event=1,
                                extra_meta={"elapsed_seconds": elapsed()})
        if score.status == "ok":
            self._write_best(arch, score.value, metrics, result.state_dict)

    def _write_best(self, arch: Architecture, value: float | None, metrics: dict[str, Any],
                    state: dict | None) -> None:
        """best.json / best.pt in the black-box study's format (see Study._write_best)."""
        if state is not None:
            atomic_save(state, self.run_dir / BEST_WEIGHTS)
        doc = {"trial": 0, "architecture": arch.to_dict(), "text": self.space.format(arch), "value": value,
               "objective": self.objective.describe(), "val_accuracy": metrics.get("val_accuracy"),
               "test_accuracy": metrics.get("test_accuracy"), "metrics": metrics,
               "weights": BEST_WEIGHTS if state is not None else None,
               "space": {"name": self.spec.space, "config": self.spec.space_config},
               "strategy": self.strategy_name}
        write_best(self.run_dir, doc)
