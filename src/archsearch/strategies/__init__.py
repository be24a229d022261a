"""Search strategies, registered by name. Black-box ones speak ask/tell (see base.Strategy)."""
from .base import STRATEGIES, Strategy, make_strategy, objective_kinds, register_strategy, strategy_options_for  # noqa: F401
from . import evolution, random  # noqa: F401,E402  (register built-ins)

__all__ = ["STRATEGIES", "Strategy", "make_strategy", "objective_kinds", "register_strategy", "strategy_options_for"]
try:  # Optuna samplers as strategies (optuna-tpe, optuna-random, optuna-nsgaii)
    from . import optuna  # noqa: F401
except ImportError:  # pragma: no cover
    pass
from . import bayesopt, grid, local, rl  # noqa: F401,E402  (issue 4: rl, bo, local, grid)
from . import pareto  # noqa: F401,E402  (issue 6: nsga2)
from . import multiobjective  # noqa: F401,E402  (issue 10: bo-ehvi, bo-parego, local-pareto, bo-constrained)
from . import hierarchical, nao, pnas  # noqa: F401,E402  (issue 11: hierarchical-evolution, pnas, nao)
