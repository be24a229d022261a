"""One run description (issue 23): :class:`RunConfig` holds what a search is asked for — by ``archsearch search``,
by ``archsearch.search`` and by anything else that starts a run — fills the defaults once, checks once, and builds
the evaluator's and the strategy's options from what the registered components declare (a strategy's
``objectives``, an evaluator's ``reports`` and ``fidelities``). An option the chosen strategy, evaluator or
``--resume`` would not use is a one-line error naming it, never ignored.

The command line names the options as its flags (``--constraint``, ``--strategy-opt``); the API by their field
names. ``build()`` gives a new :class:`~archsearch.study.Study` (black-box strategies) or
:class:`~archsearch.oneshot_study.OneShotStudy` (one-shot strategies), ready to ``run()``; ``RunConfig.resume``
opens either kind again.
"""
from __future__ import annotations

import os

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Sequence

from .errors import UserError

#: The default search: a useful result on the embedded digits in about two minutes on 2 CPU cores.
DEFAULTS = {"space": "macro", "strategy": "bo", "trials": 30, "seconds": 165.0, "epochs": 6}
#: Strategy settings for budgets of tens of trials (Real et al. use population 100 for 20,000 trials; a
#: population of ~1/4 of the budget leaves room for evolution).
DEFAULT_STRATEGY_OPTIONS = {"evolution": {"population": 8, "sample_size": 3}}
#: The fields whose command-line flag is not ``--`` + the field's name with dashes.
FLAGS = {"constraints": "--constraint", "metrics_tables": "--metrics-table", "space_config": "--space-opt",
         "strategy_options": "--strategy-opt", "reference": "--no-reference",
         "warm_start": "--no-warm-start"}


@dataclass
class RunConfig:
    """A search, as asked for. ``trials``/``seconds``: the budget (neither: ``DEFAULTS``' 30 trials within 165 s);
    ``epochs``: per trial (black-box) or supernet search epochs (one-shot), ``train_epochs``: the one-shot
    search's derived architecture; the rest as ``archsearch search --help`` says."""

    space: str = DEFAULTS["space"]
    strategy: str = DEFAULTS["strategy"]
    trials: int | None = None
    seconds: float | None = None
    epochs: int = DEFAULTS["epochs"]
    train_epochs: int | None = None
    seed: int = 0
    data: str | None = None
    evaluator: str = "train"
    table: str | None = None
    metrics_tables: Sequence[str] | None = None
    hardware: str | None = None
    objective: str | None = None
    constraints: Sequence[str] | None = None
    reference_point: str | Sequence[float] | None = None
    latency_device: str | None = None
    latency_threads: int = 1
    latency_clock: str = "wall"
    latency_table: str | None = None
    out: str | Path | None = None
    device: str = "auto"
    space_config: dict[str, Any] = field(default_factory=dict)
    strategy_options: dict[str, Any] = field(default_factory=dict)
    evaluator_options: dict[str, Any] = field(default_factory=dict)
    executor: str | None = None
    workers: int | None = None
    threads: int | None = None
    address: str | None = None
    retries: int = 0
    trial_timeout: float | None = None
    scheduler: str = "fifo"
    min_epochs: float | None = None
    eta: int = 3
    reference: bool = True
    warm_start: bool = True

    # ---- what was asked -------------------------------------------------------------------------------------
    @property
    def oneshot(self) -> bool:
        from .strategies.catalog import ONE_SHOT, strategy_kind
        return strategy_kind(self.strategy) == ONE_SHOT

    def given(self) -> list[str]:
        """The fields set to something other than their default, in declaration order."""
        default = RunConfig()
        return [f.name for f in fields(self) if _differs(getattr(self, f.name), getattr(default, f.name))
                and not (f.name == "executor" and self.executor == "auto")]  # "auto": the CLI's default

    @staticmethod
    def flag(name: str, cli: bool) -> str:
        return (FLAGS.get(name) or "--" + name.replace("_", "-")) if cli else name

    def unused(self) -> list[tuple[list[str], str]]:
        """Groups of given fields the run would not use, each with the reason."""
        given = set(self.given())
        groups: list[tuple[set[str], str]] = []
        if self.oneshot:
            groups.append(({"scheduler", "min_epochs", "eta", "retries", "trial_timeout", "reference_point",
                            "metrics_tables", "hardware", "reference", "warm_start"},
                           f"{self.strategy} is a one-shot strategy (it trains one supernet, not trials)"))
        else:
            groups.append(({"train_epochs"}, f"{self.strategy} is a black-box strategy (each trial trains --epochs; "
                           "one-shot strategies train their derived architecture --train-epochs)"))
        if not self.oneshot and not self.reference:
            groups.append(({"warm_start"}, "it tells the strategy the reference's result, and --no-reference "
                           "trains no reference"))
        if not self.oneshot and self.scheduler == "fifo":
            groups.append(({"eta"}, "it sets a multi-fidelity --scheduler (asha, hyperband, sh, bohb, median)"))
        if self.evaluator != "tabular":
            groups.append(({"metrics_tables", "hardware", "table"},
                           f"they are for the tabular evaluator, not {self.evaluator}"))
        elif not self.oneshot:
            groups.append(({"data", "device"}, "the tabular evaluator looks every result up in its table"))
        return [([f.name for f in fields(self) if f.name in names and f.name in given], why)
                for names, why in groups if names & given]

    def refuse_unused(self, cli: bool = False) -> None:
        for names, why in self.unused():
            raise UserError(f"{', '.join(self.flag(n, cli) for n in names)} would be ignored: {why}")

    # ---- building the run -------------------------------------------------------------------------------------
    def build(self, cli: bool = False):
        """The new study this describes (nothing is trained yet); every check fails before the run directory
        exists. ``cli``: errors name the command line's flags."""
        from .spaces import SPACES

        from .strategies.catalog import check_options, find_strategy

        find_strategy(self.strategy)  # an unknown name: one line naming the strategies of both kinds
        self.refuse_unused(cli)
        SPACES.get(self.space)
        check_options(self.strategy, self.strategy_options, self.flag("strategy_options", cli))
        objective, metric_opts = self._objective(cli)
        self._check_kinds(objective, cli)
        data = self._data()
        return self._oneshot(objective, metric_opts, data, cli) if self.oneshot else \
            self._blackbox(objective, metric_opts, data, cli)

    def components(self, cli: bool = False) -> "RunParts":
        """The space, evaluator and objective this describes, built in memory with the checks :meth:`build`
        makes (no run directory, no strategy: the benchmarks run many strategies and seeds on one table this
        way, :mod:`archsearch.benchmark`)."""
        from .evaluators import make_evaluator
        from .spaces import get_space

        self.refuse_unused(cli)
        objective, metric_opts = self._objective(cli)
        data = self._data()
        space = get_space(self.space, **dict(self.space_config))
        options = self._evaluator_options(data, metric_opts, self.epochs)
        return RunParts(space, make_evaluator(self.evaluator, space, **options), objective, options)

    @staticmethod
    def resume(run_dir: str | Path, given: Sequence[str] = (), cli: bool = False):
        """The stored run at ``run_dir``, opened to continue (black-box or one-shot). ``given``: options also
        asked for, refused (a resumed run keeps its stored settings)."""
        if given:
            raise UserError(f"{', '.join(RunConfig.flag(n, cli) for n in given)} would be ignored: a resumed run "
                            "continues with its stored settings")
        from .oneshot_study import OneShotStudy, is_oneshot_run
        from .study import Study
        return OneShotStudy.resume(run_dir) if is_oneshot_run(run_dir) else Study.resume(run_dir)

    def _objective(self, cli: bool):
        """The objective, checked against what the evaluator reports, and the evaluator options its metrics need
        (latency measured when the objective reads ``latency_ms``; a per-op latency table)."""
        from .evaluators import reported_metrics
        from .objective import parse_objective

        obj = parse_objective(self.objective, list(self.constraints or []) or None)
        needed = set(obj.metrics())
        tables = [str(t) for t in self.metrics_tables] if self.metrics_tables else None
        reported = reported_metrics(self.evaluator, {"metrics_tables": tables, "hardware": self.hardware})
        if self.evaluator != "tabular" and (self.hardware is not None or tables):
            raise UserError(f"{self.flag('hardware', cli)} and {self.flag('metrics_tables', cli)} work with the "
                            "tabular evaluator (--evaluator tabular)")
        if reported is not None:
            missing = sorted(needed - reported)
            if missing:
                hint = f"; give {self.flag('hardware', cli)} DEVICE for latency_ms" \
                    if "latency_ms" in missing and self.evaluator == "tabular" and self.hardware is None else ""
                raise UserError(f"the {self.evaluator} evaluator does not report {', '.join(missing)} (it reports "
                                f"{', '.join(sorted(reported))}){hint}")
        opts: dict[str, Any] = {}
        clock, threads = self.latency_clock, self.latency_threads
        if clock not in ("wall", "cpu") or (clock == "cpu" and threads != 1):
            raise UserError(f"bad {self.flag('latency_clock', cli)} {clock!r}: use wall, or cpu (with "
                            f"{self.flag('latency_threads', cli)} 1)")
        given = [n for n in ("latency_threads", "latency_clock") if n in self.given()]
        if self.evaluator != "train":
            if self.latency_device or self.latency_table:
                raise UserError(f"{self.flag('latency_device', cli)} and {self.flag('latency_table', cli)} work "
                                "with the train evaluator")
            if given:
                raise UserError(f"{', '.join(self.flag(n, cli) for n in given)} would be ignored: they set how the "
                                "train evaluator measures latency")
            return obj, opts
        if "predicted_latency_ms" in needed and self.latency_table is None:
            raise UserError(f"predicted_latency_ms needs a per-op latency table: {self.flag('latency_table', cli)} "
                            "FILE (make one with `archsearch profile`)")
        if self.latency_device or "latency_ms" in needed:
            opts.update(latency_device=self.latency_device or "cpu", latency_threads=threads)
            if clock != "wall":
                opts["latency_clock"] = clock
        elif given:
            raise UserError(f"{', '.join(self.flag(n, cli) for n in given)} would be ignored: no latency is "
                            f"measured (give {self.flag('latency_device', cli)}, or an objective or constraint on "
                            "latency_ms)")
        if self.latency_table is not None:
            from .hardware.latency_table import LatencyTable
            LatencyTable.load(self.latency_table)  # a bad file fails here, before the run directory exists
            opts["latency_table"] = str(Path(self.latency_table).resolve())
        return obj, opts

    def _check_kinds(self, objective: Any, cli: bool) -> None:
        """A Pareto objective needs a strategy that searches by several values (declared ``objectives``)."""
        if self.oneshot or getattr(objective, "goals", None) is None:
            return
        from .strategies import STRATEGIES, objective_kinds
        if "vector" not in objective_kinds(self.strategy):
            takes = [n for n in STRATEGIES.names() if "vector" in objective_kinds(n)]
            raise UserError(f"{self.flag('objective', cli)} {self.objective} is multi-objective; {self.strategy} "
                            f"would search by its first metric alone: use one of {', '.join(takes)}")

    def _data(self) -> str | None:
        """The data, read once here (a bad file fails in one line before the run directory exists); a local
        path made absolute, so a resumed run finds it from anywhere."""
        if self.data is None or (self.evaluator == "tabular" and not self.oneshot):
            return self.data
        from .datasets import load_data
        load_data(self.data)
        return str(Path(self.data).resolve()) if Path(self.data).exists() else self.data

    def _device(self) -> str | None:
        return None if self.device == "auto" else self.device

    def _evaluator_options(self, data: str | None, metric_opts: dict[str, Any], epochs: int) -> dict[str, Any]:
        """The evaluator's options: from the run's data, epochs and device, the objective's metrics, the
        tabular evaluator's tables; ``evaluator_options`` on top."""
        if self.evaluator == "train":
            opts: dict[str, Any] = {"data": data, "epochs": epochs, "device": self._device(), **metric_opts}
        elif self.evaluator == "weight-sharing":  # epochs: of the SPOS supernet that ranks the architectures
            opts = {"data": data, "epochs": epochs, "device": self._device()}
        elif self.evaluator == "tabular":
            opts = {"table": str(self.table)} if self.table else {}
            if self.metrics_tables:
                opts["metrics_tables"] = [str(Path(t).resolve()) for t in self.metrics_tables]
            if self.hardware:
                opts["hardware"] = self.hardware
        else:  # a user-registered evaluator: what the run names, nothing guessed
            opts = {"data": data} if data is not None else {}
        return {**opts, **self.evaluator_options}

    def _strategy_options(self, objective: Any, cli: bool) -> dict[str, Any]:
        """The strategy's options: its defaults, what it declares it is told of the objective (constraints, a
        reference point), then ``strategy_options`` on top."""
        from .objective import reference_point as check_reference
        from .strategies import strategy_options_for

        st_opts = {**DEFAULT_STRATEGY_OPTIONS.get(self.strategy, {}), **self.strategy_options}
        ref = None if self.reference_point is None else check_reference(objective, self.reference_point)
        told = strategy_options_for(self.strategy, objective, ref)
        if ref is not None and "ref_point" not in told:
            raise UserError(f"strategy {self.strategy} does not take a reference point (bo-ehvi does)")
        st_opts = {**told, **st_opts}
        if "ref_point" in st_opts:  # also when given as a strategy option ref_point=[...] (maximised orientation)
            st_opts["ref_point"] = check_reference(objective, st_opts["ref_point"], oriented=True)
        return st_opts

    def _blackbox(self, objective: Any, metric_opts: dict[str, Any], data: str | None, cli: bool):
        from .study import Budget, Study

        trials, seconds = self.trials, self.seconds
        if trials is None and seconds is None:
            trials, seconds = DEFAULTS["trials"], DEFAULTS["seconds"]
        if self.epochs < 1:
            raise UserError(f"{self.flag('epochs', cli)} must be at least 1, got {self.epochs}")
        return Study.create(space=self.space, strategy=self.strategy, evaluator=self.evaluator,
                            budget=Budget(trials, seconds), seed=self.seed, space_config=dict(self.space_config),
                            strategy_options=self._strategy_options(objective, cli),
                            evaluator_options=self._evaluator_options(data, metric_opts, self.epochs),
                            objective=objective, run_dir=self.out, **self._execution(trials),
                            address=self.address, retries=self.retries,
                            trial_timeout=self.trial_timeout, scheduler=self.scheduler,
                            min_epochs=self.min_epochs, eta=self.eta, reference=self.reference,
                            warm_start=self.warm_start)

    def _execution(self, trials: int | None) -> dict[str, Any]:
        """Where a black-box search's trials run: as given; None: inline. ``"auto"`` (the CLI's default): with
        ``workers`` alone, that many local processes; with no ``workers``/``threads``, for trials trained on the
        CPU of a machine with several cores, one 1-thread worker process per core (measured in
        docs/benchmarks.md, issue 22: 2.0x / 2.7x the trials per hour of the default when the issue was filed,
        on digits / a 28x28 dataset, idle; results are told to the strategy in ask order, so a seed still gives
        one search). Else (a GPU, measured latency, other evaluators, one core): inline. The API's default
        stays inline: worker processes start fresh (fork server or spawn) and import the caller's script, which
        fails in a script without ``if __name__ == "__main__":``."""
        self._check_executor()
        executor, workers, threads = self.executor, self.workers, self.threads
        if executor != "auto":
            return {"executor": executor or "inline", "workers": workers, "threads": threads}
        executor = None
        if workers is not None and workers > 1:
            executor = "process"
        if workers is None and threads is None and self._parallel_by_default():
            cores = os.cpu_count() or 1
            executor, threads = "process", 1
            workers = cores if trials is None else max(1, min(cores, trials + int(self.reference)))
            if workers == 1:  # one trial (no reference): inline, on every core's threads
                executor, workers, threads = None, None, None
        return {"executor": executor or "inline", "workers": workers, "threads": threads}

    def _check_executor(self) -> None:
        """An unknown executor is one line naming every choice, ``auto`` too (the registry's would omit it)."""
        from .executors import EXECUTORS
        from .registry import UnknownNameError, did_you_mean

        if self.executor not in (None, "auto") and self.executor not in EXECUTORS:
            choices = ["auto", *EXECUTORS.names()]
            raise UnknownNameError(f"unknown executor {self.executor!r}{did_you_mean(self.executor, choices)}; "
                                   f"choose from: {', '.join(choices)}")

    def _parallel_by_default(self) -> bool:
        if self.evaluator != "train" or self.latency_device is not None or (os.cpu_count() or 1) < 2:
            return False
        if self.device not in ("auto", "cpu"):
            return False
        if self.device == "auto":
            import torch
            if torch.cuda.is_available():
                return False
        return True

    def _oneshot(self, objective: Any, metric_opts: dict[str, Any], data: str | None, cli: bool):
        from .oneshot_study import DEFAULT_TRAIN_EPOCHS, OneShotStudy

        if self.trials is not None:
            raise UserError(f"{self.flag('trials', cli)} is for black-box strategies; a one-shot search trains one "
                            f"supernet: give {self.flag('epochs', cli)} (search) and {self.flag('train_epochs', cli)}"
                            " (the derived architecture)")
        self._check_executor()
        workers = 1 if self.workers is None else self.workers
        executor = "inline" if self.executor in (None, "auto") else self.executor
        if workers > 1 and executor == "inline":
            executor = "process"  # N workers alone: N local processes
        train_epochs = DEFAULT_TRAIN_EPOCHS if self.train_epochs is None else self.train_epochs
        if self.epochs < 1 or train_epochs < 1:
            raise UserError(f"{self.flag('epochs', cli)} and {self.flag('train_epochs', cli)} must be at least 1, "
                            f"got {self.epochs} and {train_epochs}")
        study = OneShotStudy.create(space=self.space, strategy=self.strategy, epochs=self.epochs, seed=self.seed,
                                    space_config=dict(self.space_config),
                                    strategy_options=dict(self.strategy_options), evaluator=self.evaluator,
                                    evaluator_options=self._evaluator_options(data, metric_opts, train_epochs),
                                    objective=objective, run_dir=self.out, seconds=self.seconds, data=data,
                                    device=self._device(), workers=workers, executor=executor,
                                    address=self.address, threads=self.threads)
        if self.threads is not None and workers == 1:  # (more workers: each process gets ``threads``)
            import torch
            torch.set_num_threads(self.threads)
        return study


@dataclass
class RunParts:
    """What :meth:`RunConfig.components` builds: the space, the evaluator (and the options it was built with,
    to rebuild it in worker processes) and the objective."""

    space: Any
    evaluator: Any
    objective: Any
    evaluator_options: dict[str, Any]


def _differs(value: Any, default: Any) -> bool:
    if isinstance(value, (list, tuple, dict)) or isinstance(default, (list, tuple, dict)):
        return (value or None) != (default or None)  # an empty list or dict is as good as none
    return value != default
