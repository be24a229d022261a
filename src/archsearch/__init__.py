"""archsearch: neural architecture search on PyTorch.

search space -> search strategy -> architecture -> performance estimator -> result (told back to the strategy).
"""
from __future__ import annotations

__version__ = "0.1.0"

from .space import Architecture, ArchitectureError, Chooser, InputShape, SearchSpace, space_from_function
from .spaces import get_space, register_space
from .api import Run, Trained, load, resume, search, train

__all__ = [
    "Architecture", "ArchitectureError", "Chooser", "InputShape", "SearchSpace", "space_from_function",
    "get_space", "register_space", "search", "load", "resume", "Run", "train", "Trained", "__version__",
]
