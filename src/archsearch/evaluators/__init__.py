"""Performance estimators: training (full/partial), tabular benchmark lookup, weight sharing."""
from .base import (EVALUATORS, Evaluator, EvaluatorSpec, fidelities, make_evaluator, register_evaluator,  # noqa: F401
                   reported_metrics)
from . import training  # noqa: F401,E402
from . import weight_sharing  # noqa: F401,E402  (issue 5: SPOS supernet ranking)
try:
    from . import tabular  # noqa: F401
except ImportError:  # pragma: no cover
    pass
