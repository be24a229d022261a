"""archsearch: neural architecture search on PyTorch.

search space -> search strategy -> architecture -> performance estimator -> result (told back to the strategy).

The layers, bottom first; a module imports its own layer and those below, never one above, and there is no
import circle (``tests/test_layout.py`` checks both; docs/architecture.md says why each line is where it is):

1. foundation: ``errors``, ``registry``, ``safeload`` (loading without executing code), ``_version``
2. space core: ``ops`` (the operation library), ``space`` (choices, Architecture, SearchSpace), ``genotypes``,
   ``result`` (what an evaluation returns)
3. ``spaces/``: the built-in spaces, each registered by name, and their hand-designed references
4. ``hardware/``: params, FLOPs, latency measurement and tables, hardware objectives, export
5. ``datasets/``: in-memory data, local-file readers, text corpora, augmentation
6. ``objective``, ``storage`` (the SQLite run store), ``runlock`` (one writer per run)
7. ``training/``: the one training loop, the final-training recipe
8. ``executors/`` (inline, process pool, Ray), 9. ``strategies/`` (black-box ask/tell, one-shot supernets),
   10. ``evaluators/`` (training, tabular, weight sharing)
11. the study: ``study`` (the loop that wires the parts), ``oneshot_study``, ``schedulers``, ``summary``
12. tools over runs: ``arch_sources``, ``benchmark/``, ``report/``; then ``dashboard/``
13. ``api`` (``archsearch.search``, ``load``, ``train``), then ``cli/`` (one module per command group)
"""
from __future__ import annotations

from ._version import __version__

from .space import Architecture, ArchitectureError, Chooser, InputShape, SearchSpace, space_from_function
from .spaces import get_space, register_space
from .api import Run, Trained, load, resume, search, train

__all__ = [
    "Architecture", "ArchitectureError", "Chooser", "InputShape", "SearchSpace", "space_from_function",
    "get_space", "register_space", "search", "load", "resume", "Run", "train", "Trained", "__version__",
]
