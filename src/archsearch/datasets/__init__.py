"""Datasets: what a search trains and evaluates on, in memory.

``core``: the :class:`Dataset` record, splitting and normalising arrays, the embedded 8x8 digits and ``.npz`` files;
``files``: local dataset folders (CIFAR batches, MNIST IDX files, one folder of images per class); ``text``: word-level
corpora for the recurrent space; ``augment``: training-time augmentation. :func:`load_data` resolves ``--data``.
This layer uses the space core (``InputShape``) and nothing above it.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import UserError
from . import files as data_files
from .augment import AUGMENTATIONS, augment_batch
from .core import DATASETS, Dataset, load_digits, load_npz, make_dataset, split_arrays
from .text import is_corpus, load_corpus

__all__ = ["AUGMENTATIONS", "DATASETS", "Dataset", "augment_batch", "cached_data", "load_data", "load_digits",
           "load_npz", "make_dataset", "split_arrays"]


def load_data(spec: str | os.PathLike | None = None, image_size: int | None = None) -> Dataset:
    """Resolve ``--data``: None or a registered name ('digits'), a local dataset by name ('cifar10', 'cifar100',
    'mnist', 'fashion-mnist': looked for under $ARCHSEARCH_DATA, never downloaded), or a path: a ``.npz`` file or a
    folder in a recognised layout (:mod:`archsearch.datasets.files`; ``image_size`` resizes an image folder)."""
    if spec is None or str(spec) == "":
        spec = "digits"
    s = str(spec)
    if s in DATASETS:
        return DATASETS.get(s)()
    if s in data_files.NAMED_FOLDERS:
        return data_files.load_path(data_files.find_named(s), image_size)
    if is_corpus(s):
        return load_corpus(s)
    if s.endswith(".npz") or Path(s).exists() or "/" in s or os.sep in s:  # a path (maybe a missing one)
        return data_files.load_path(Path(s), image_size)
    names = ", ".join(DATASETS.names() + list(data_files.NAMED_FOLDERS))
    raise UserError(f"unknown dataset {s!r}: give a .npz file, a data folder, or one of: {names}")


_DATA_CACHE: dict[str, Dataset] = {}


def cached_data(spec: str | None) -> Dataset:
    """:func:`load_data`, once per process and spec (workers evaluate many trials on the same data)."""
    key = str(spec or "digits")
    if key not in _DATA_CACHE:
        _DATA_CACHE[key] = load_data(spec)
    return _DATA_CACHE[key]
