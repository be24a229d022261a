"""Executors run evaluations and hand back results; the study loop talks to them through one small interface:
``submit(job)``, ``wait() -> finished (job, result) pairs``, ``capacity``, ``in_flight``, ``close()``.

Executors are made as ``EXECUTORS.get(name)(evaluator=..., workers=N, trial_timeout=S, address=...)``; worker
processes and Ray actors receive a pickled copy of the evaluator (its data is loaded once per worker).
``inline`` (the default) evaluates in the driver process when ``wait`` is called. Process-pool and Ray
executors implement the same interface and return results as workers finish (asynchronous search).
"""
from .base import EXECUTORS, EvaluateFn, Executor, InlineExecutor, Job, safe_evaluate  # noqa: F401
from . import process as _process  # noqa: E402,F401  (registers "process")
from . import ray as _ray  # noqa: E402,F401  (registers "ray"; Ray itself is imported only when used)
