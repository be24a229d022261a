"""Any Optuna sampler as an archsearch strategy (Akiba et al., "Optuna: A Next-generation Hyperparameter
Optimization Framework", KDD 2019).

Each decision of the space becomes one ``CategoricalDistribution``: the options themselves for op and value
decisions, the index into ``Decision.choices`` for input decisions. The study lives in memory; archsearch's own
run store keeps the record. Registered samplers:

* ``optuna-tpe``: the Tree-structured Parzen Estimator (Bergstra et al., NeurIPS 2011) with Optuna's defaults,
  which in Optuna >= 5 means multivariate TPE (Falkner et al., ICML 2018) for a single objective and the
  constant liar for trials in flight; in older Optuna we ask for ``multivariate=True`` explicitly.
  Nothing is tuned to any benchmark.
* ``optuna-random``: Optuna's random sampler (a check of the adapter against our own random search).
* ``optuna-nsgaii``: NSGA-II (Deb et al., 2002), Optuna's genetic algorithm, with its defaults.

Constraints (``constraints=["latency_ms<=10"]``, as ``archsearch benchmark`` and ``search`` pass them to
``optuna-tpe`` and ``optuna-nsgaii``): infeasible results are told
with their values and each constraint's violation (metric minus bound, feasible when <= 0; ``Trial.set_constraint``
in Optuna >= 5, ``constraints_func`` before), so that TPE becomes
c-TPE (Watanabe & Hutter, IJCAI 2023) and NSGA-II uses Deb's constrained domination. Without it, infeasible
results are told as failed trials.

Multi-objective: when observations carry ``values`` (a Pareto objective), the Optuna study becomes a
multi-objective one (every component maximised) at the first such tell, the trials in flight moving over with
their parameters; NSGA-II and TPE (MOTPE) then search for the Pareto front, random sampling is unchanged.
"""
from __future__ import annotations

import warnings
from collections import deque
from typing import Any, Callable, Sequence

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.samplers import BaseSampler
from optuna.trial import Trial, TrialState

from ..hardware.objectives import Constraint, parse_constraint
from ..result import Observation
from ..space import Architecture, Decision, SearchSpace
from .base import Strategy, register_strategy

__all__ = ["OptunaStrategy", "OptunaTPE", "OptunaRandom", "OptunaNSGAII"]


def _categories(d: Decision) -> list[Any]:
    return list(range(d.size)) if d.kind == "inputs" else list(d.options)


class OptunaStrategy(Strategy):
    """Wraps an ``optuna.samplers.BaseSampler`` (its own seed makes the strategy deterministic).

    Several asks may be in flight: every ask opens an Optuna trial, kept per architecture in ask order (the
    same architecture may be asked twice) and closed by the matching tell. A tell for an architecture this
    strategy never asked (a resumed run replaying its history) is added to the study as a finished trial.
    Failed and infeasible observations are told as failed trials, which samplers ignore.
    """

    name = "optuna"

    def __init__(self, space: SearchSpace, seed: int = 0, sampler: BaseSampler | None = None,
                 constraints: Sequence[Constraint] = ()):
        super().__init__(space, seed)
        self.constraints = tuple(constraints)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.sampler = sampler if sampler is not None else optuna.samplers.RandomSampler(seed=seed)
        self.study = optuna.create_study(direction="maximize", sampler=self.sampler)
        self.distributions = {d.label: CategoricalDistribution(_categories(d)) for d in space.decisions}
        self._open: dict[Architecture, deque[Trial]] = {}
        self.n_objectives = 1

    def _use_objectives(self, k: int) -> None:
        """Switch the Optuna study to ``k`` objectives (all maximised) before the first result is told; the
        trials in flight are re-opened in the new study with the same parameters."""
        if k == self.n_objectives:
            return
        if any(t.state == TrialState.COMPLETE for t in self.study.get_trials(deepcopy=False)):
            raise ValueError(f"strategy {self.name!r}: results with {k} objective(s) after results with "
                             f"{self.n_objectives}")
        study = optuna.create_study(directions=["maximize"] * k, sampler=self.sampler)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            for arch, queue in self._open.items():
                moved = deque()
                for trial in queue:
                    study.enqueue_trial(trial.params)
                    moved.append(study.ask(self.distributions))
                self._open[arch] = moved
        self.study, self.n_objectives = study, k

    # ---- mapping between Optuna params and architectures ----------------------------------------------------
    def _to_arch(self, params: dict[str, Any]) -> Architecture:
        choices = {}
        for d in self.space.decisions:
            v = params[d.label]
            choices[d.label] = d.choices[v] if d.kind == "inputs" else v
        return self.space.canonical(Architecture(choices))

    def _to_params(self, arch: Architecture) -> dict[str, Any]:
        return {d.label: d.index(arch[d.label]) if d.kind == "inputs" else arch[d.label]
                for d in self.space.decisions}

    # ---- ask / tell -----------------------------------------------------------------------------------------
    def _ask(self) -> Architecture:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            trial = self.study.ask(self.distributions)
        arch = self._to_arch(trial.params)
        self._open.setdefault(arch, deque()).append(trial)
        return arch

    def _violations(self, obs: Observation) -> list[float] | None:
        """Each constraint's signed violation (<= 0: satisfied), when the sampler handles constraints."""
        if not self.constraints or obs.failed:
            return None
        out = []
        for c in self.constraints:
            v = c.value(obs.metrics)
            if v is None:
                return None
            out.append(v - c.bound if c.op in ("<=", "<") else c.bound - v)
        if not obs.feasible and all(x <= 0 for x in out):  # strict bounds met with equality, or other constraints
            out = [max(x, 1e-12) for x in out]
        return out

    def _tell(self, obs: Observation) -> None:
        violations = self._violations(obs)
        ok = not obs.failed and (obs.feasible or violations is not None)
        values = [float(v) for v in obs.values] if obs.values is not None else None
        if values is not None:
            self._use_objectives(len(values))
        elif ok and self.n_objectives != 1:
            raise ValueError(f"strategy {self.name!r}: a single-objective result in a multi-objective search")
        queue = self._open.get(obs.arch)
        if queue:
            trial = queue.popleft()
            if not queue:
                del self._open[obs.arch]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                if ok:
                    if violations is not None:
                        _set_constraints(trial, self.constraints, violations)
                    self.study.tell(trial, values if values is not None else float(obs.value))
                else:
                    self.study.tell(trial, state=TrialState.FAIL)
            return
        if ok and self.space.contains(obs.arch):  # told without an ask: record it so the sampler learns from it
            self.study.add_trial(optuna.trial.create_trial(
                params=self._to_params(obs.arch), distributions=self.distributions,
                **({} if violations is None else {"constraints": dict(zip(map(str, self.constraints), violations))}
                   if _NEW_CONSTRAINTS else {"user_attrs": {_CONSTRAINTS: violations}}),
                **({"values": values} if values is not None else {"value": float(obs.value)})))


_CONSTRAINTS = "archsearch_constraints"
_NEW_CONSTRAINTS = hasattr(Trial, "set_constraint")  # Optuna >= 5: constraints live on the trial


def _constraints_func(trial: optuna.trial.FrozenTrial) -> Sequence[float]:  # Optuna < 5
    return trial.user_attrs.get(_CONSTRAINTS, (0.0,))


def _set_constraints(trial: Trial, constraints: Sequence[Constraint], violations: list[float]) -> None:
    if _NEW_CONSTRAINTS:
        for c, v in zip(constraints, violations):
            trial.set_constraint(str(c), v)
    else:
        trial.set_user_attr(_CONSTRAINTS, violations)


def _parse(constraints: Sequence[str] | str | None) -> tuple[Constraint, ...]:
    if not constraints:
        return ()
    return tuple(parse_constraint(c, known=None) for c in ([constraints] if isinstance(constraints, str)
                                                             else constraints))


def _make_sampler(strategy: str, factory: Callable[..., BaseSampler], seed: int, options: dict,
                  constraints: tuple[Constraint, ...] = ()) -> BaseSampler:
    if constraints and not _NEW_CONSTRAINTS:
        options = {**options, "constraints_func": _constraints_func}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return factory(seed=seed, **options)
    except TypeError as e:
        raise TypeError(f"strategy {strategy!r}: {e}") from None


@register_strategy("optuna-tpe")
class OptunaTPE(OptunaStrategy):
    """Optuna's TPE with its default settings; options are ``TPESampler`` keyword arguments."""
    passes_options_to = "the Optuna sampler (its keyword arguments)"

    objectives = frozenset({"single", "constrained"})

    def __init__(self, space: SearchSpace, seed: int = 0, constraints: Sequence[str] | str | None = None,
                 **sampler_options: Any):
        if int(optuna.__version__.split(".")[0]) < 5:  # Optuna 5 made multivariate TPE the default
            sampler_options.setdefault("multivariate", True)
        cons = _parse(constraints)
        sampler = _make_sampler(self.name, optuna.samplers.TPESampler, seed, sampler_options, cons)
        super().__init__(space, seed, sampler=sampler, constraints=cons)


@register_strategy("optuna-random")
class OptunaRandom(OptunaStrategy):
    """Optuna's random sampler."""

    objectives = frozenset({"single", "vector"})  # (it reads no value: any objective)

    def __init__(self, space: SearchSpace, seed: int = 0):
        super().__init__(space, seed, sampler=optuna.samplers.RandomSampler(seed=seed))


@register_strategy("optuna-nsgaii")
class OptunaNSGAII(OptunaStrategy):
    """Optuna's NSGA-II with its default settings; options are ``NSGAIISampler`` keyword arguments."""
    passes_options_to = "the Optuna sampler (its keyword arguments)"

    objectives = frozenset({"single", "vector", "constrained"})

    def __init__(self, space: SearchSpace, seed: int = 0, constraints: Sequence[str] | str | None = None,
                 **sampler_options: Any):
        cons = _parse(constraints)
        sampler = _make_sampler(self.name, optuna.samplers.NSGAIISampler, seed, sampler_options, cons)
        super().__init__(space, seed, sampler=sampler, constraints=cons)
