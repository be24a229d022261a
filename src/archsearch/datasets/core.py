"""Datasets: the embedded 8x8 digits (no download), a user's ``.npz`` file, and a registry for more.

A :class:`Dataset` is three in-memory splits of float tensors (N, C, H, W) normalised with the training split's
per-channel mean and std, plus integer labels. Channels, classes and resolution are inferred from the data.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..errors import UserError
from ..registry import Registry
from ..space import InputShape


@dataclass
class Dataset:
    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    augment: str = "none"  # name of the training-time augmentation ("none", later "crop_flip" for CIFAR)

    @property
    def shape(self) -> InputShape:
        c, h, w = self.x_train.shape[1:]
        return InputShape(int(c), int(h), int(w), self.num_classes)

    def summary(self) -> str:
        s = self.shape
        return (f"{self.name}: {len(self.x_train)} train / {len(self.x_val)} val / {len(self.x_test)} test, "
                f"{s.channels}x{s.height}x{s.width}, {self.num_classes} classes")


DATASETS: Registry[Callable[[], Dataset]] = Registry("dataset")


def split_arrays(name: str, x: np.ndarray, y: np.ndarray, fractions=(0.6, 0.2, 0.2), seed: int = 0,
                 augment: str = "none") -> Dataset:
    """Deterministic stratified train/val/test split, normalised with train statistics."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    strat = y if np.bincount(y).min() >= 3 else None
    rest_frac = fractions[1] + fractions[2]
    tr, rest = train_test_split(idx, test_size=rest_frac, random_state=seed, stratify=strat)
    strat_rest = y[rest] if strat is not None else None
    va, te = train_test_split(rest, test_size=fractions[2] / rest_frac, random_state=seed, stratify=strat_rest)
    return make_dataset(name, x[tr], y[tr], x[va], y[va], x[te], y[te], augment=augment)


def make_dataset(name: str, x_train, y_train, x_val, y_val, x_test, y_test, augment: str = "none") -> Dataset:
    """Normalise per channel with the training split's statistics and wrap as tensors."""
    x_train = np.asarray(x_train, dtype=np.float32)
    mean = x_train.mean(axis=(0, 2, 3), keepdims=True)
    std = x_train.std(axis=(0, 2, 3), keepdims=True) + 1e-6

    def t(x):
        return torch.from_numpy(((np.asarray(x, dtype=np.float32) - mean) / std).astype(np.float32))

    ys = [torch.from_numpy(np.asarray(y, dtype=np.int64)) for y in (y_train, y_val, y_test)]
    num_classes = int(max(int(y.max()) for y in ys if len(y)) + 1)
    return Dataset(name, t(x_train), ys[0], t(x_val), ys[1], t(x_test), ys[2], num_classes, augment)


@DATASETS.register("digits")
def load_digits() -> Dataset:
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes): the default, no download."""
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None, :, :]
    return split_arrays("digits", x, d.target.astype(np.int64))


def load_npz(path: str | os.PathLike) -> Dataset:
    """A user's arrays: ``x`` (N,C,H,W or N,H,W) and ``y`` (N,) integer labels 0..K-1, split 60/20/20.
    Alternatively ``x_train, y_train, x_test, y_test`` (val taken from train) or all six split arrays."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except FileNotFoundError:
        raise UserError(f"data file not found: {path}") from None
    except Exception as e:  # zip errors, pickled objects, garbage
        raise UserError(f"cannot read {path} as a .npz file ({type(e).__name__}: {e})") from None
    name = path.stem
    if "x" in arrays and "y" in arrays:
        x, y = _check_xy(path, arrays["x"], arrays["y"], "x", "y")
        return split_arrays(name, x, y)
    if {"x_train", "y_train", "x_test", "y_test"} <= arrays.keys():
        xtr, ytr = _check_xy(path, arrays["x_train"], arrays["y_train"], "x_train", "y_train")
        xte, yte = _check_xy(path, arrays["x_test"], arrays["y_test"], "x_test", "y_test")
        if xtr.shape[1:] != xte.shape[1:]:
            raise UserError(f"{path}: x_train images are {xtr.shape[1:]} but x_test images are {xte.shape[1:]}")
        if "x_val" in arrays and "y_val" in arrays:
            xva, yva = _check_xy(path, arrays["x_val"], arrays["y_val"], "x_val", "y_val")
            if xva.shape[1:] != xtr.shape[1:]:
                raise UserError(f"{path}: x_train images are {xtr.shape[1:]} but x_val images are {xva.shape[1:]}")
        else:
            from sklearn.model_selection import train_test_split
            i_tr, i_va = train_test_split(np.arange(len(ytr)), test_size=0.2, random_state=0)
            xtr, ytr, xva, yva = xtr[i_tr], ytr[i_tr], xtr[i_va], ytr[i_va]
        for yn, ys in (("y_val", yva), ("y_test", yte)):
            unseen = sorted(set(np.unique(ys).tolist()) - set(np.unique(ytr).tolist()))
            if unseen:
                raise UserError(f"{path}: {yn} has labels the training split never has: "
                                f"{', '.join(map(str, unseen[:5]))}{' ...' if len(unseen) > 5 else ''}")
        return make_dataset(name, xtr, ytr, xva, yva, xte, yte)
    raise UserError(f"{path}: expected arrays 'x' and 'y' (or x_train/y_train/x_test/y_test), "
                    f"found {sorted(arrays) or 'none'}")


def _check_xy(path: Path, x: np.ndarray, y: np.ndarray, xn: str, yn: str) -> tuple[np.ndarray, np.ndarray]:
    if x.dtype.kind not in "fiub":
        raise UserError(f"{path}: '{xn}' must be numeric, got dtype {x.dtype}")
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise UserError(f"{path}: '{xn}' must have shape (N,C,H,W) or (N,H,W), got {x.shape}")
    if y.ndim != 1 or len(y) != len(x):
        raise UserError(f"{path}: '{yn}' must be a vector of {len(x)} labels, got shape {y.shape}")
    if y.dtype.kind not in "iub" and not (y.dtype.kind == "f" and np.all(y == np.round(y))):
        raise UserError(f"{path}: '{yn}' must hold integer class labels, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if len(y) < 10:
        raise UserError(f"{path}: only {len(y)} examples; need at least 10")
    if y.min() < 0:
        raise UserError(f"{path}: labels must be 0..K-1, found {y.min()}")
    if len(np.unique(y)) < 2:
        raise UserError(f"{path}: '{yn}' has a single class; need at least 2")
    if not np.isfinite(x).all():
        raise UserError(f"{path}: '{xn}' contains NaN or infinite values")
    if x.dtype.kind in "ub" and x.max() > 1:
        x = x.astype(np.float32) / 255.0
    return x.astype(np.float32), y
