"""The evaluator contract: ``evaluate(arch, seed, fidelity) -> Result``, pure with respect to its inputs.

Evaluators are built from a name and a JSON-able options dict (``make_evaluator``) so that a run directory
can rebuild its evaluator on resume, and so that executors can ship them to worker processes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

from ..registry import Registry
from ..result import Result
from ..space import Architecture, SearchSpace


class Evaluator(Protocol):
    name: str

    def evaluate(self, arch: Architecture, seed: int = 0, fidelity: float | None = None) -> Result:
        """Estimate the performance of ``arch``. ``fidelity`` is evaluator-specific (epochs for training)."""

    def config(self) -> dict[str, Any]:
        """JSON-able options that rebuild this evaluator with ``make_evaluator(name, space, **config)``."""


EVALUATORS: Registry[Callable[..., Evaluator]] = Registry("evaluator")


def register_evaluator(name: str):
    """Register an evaluator class (or factory ``f(space, **options)``) under ``name``."""
    return EVALUATORS.register_named(name)


def make_evaluator(name: str, space: SearchSpace, **options: Any) -> Evaluator:
    return EVALUATORS.get(name)(space, **options)


def reported_metrics(name: str, options: dict[str, Any] | None = None) -> set[str] | None:
    """The metrics the registered evaluator ``name`` declares it reports with ``options`` (its ``reports``, or its
    ``reported_metrics(options)`` when they depend on them); None when it declares nothing (not checked)."""
    cls = EVALUATORS.get(name)
    if hasattr(cls, "reported_metrics"):
        return set(cls.reported_metrics(dict(options or {})))
    reports = getattr(cls, "reports", None)
    return None if reports is None else set(reports)


def fidelities(name: str) -> tuple[str, ...]:
    """The fidelities the registered evaluator ``name`` declares (``("epochs",)`` for training; () for one; an
    evaluator declaring none but ``resumable``: epochs)."""
    cls = EVALUATORS.get(name)
    return tuple(getattr(cls, "fidelities", ("epochs",) if getattr(cls, "resumable", False) else ()))


@dataclass(frozen=True)
class EvaluatorSpec:
    """A picklable recipe for an evaluator: rebuilt in worker processes and on resume."""

    space: str
    space_config: dict[str, Any]
    evaluator: str
    options: dict[str, Any]

    def build(self) -> Evaluator:
        from ..spaces import get_space
        return make_evaluator(self.evaluator, get_space(self.space, **self.space_config), **self.options)
