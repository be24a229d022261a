"""Datasets: embedded digits, .npz files in their accepted layouts, and clear errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from archsearch.datasets import load_data
from archsearch.errors import UserError


def test_digits_split_is_deterministic_and_normalised():
    a, b = load_data(), load_data("digits")
    assert a.shape.size == (1, 8, 8) and a.num_classes == 10
    assert len(a.y_train) + len(a.y_val) + len(a.y_test) == 1797
    assert torch.equal(a.x_val, b.x_val) and torch.equal(a.y_test, b.y_test)
    assert abs(float(a.x_train.mean())) < 1e-3


def test_npz_layouts(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "nhw.npz", x=rng.random((50, 6, 7)), y=rng.integers(0, 3, 50))
    d = load_data(tmp_path / "nhw.npz")
    assert d.shape.size == (1, 6, 7) and d.num_classes == 3 and len(d.y_train) == 30
    np.savez(tmp_path / "nchw.npz", x=rng.integers(0, 256, (40, 3, 5, 5), dtype=np.uint8), y=rng.integers(0, 2, 40))
    d = load_data(str(tmp_path / "nchw.npz"))
    assert d.shape.channels == 3 and d.num_classes == 2
    np.savez(tmp_path / "split.npz", x_train=rng.random((40, 4, 4)), y_train=rng.integers(0, 2, 40),
             x_test=rng.random((12, 4, 4)), y_test=rng.integers(0, 2, 12))
    d = load_data(tmp_path / "split.npz")
    assert len(d.y_test) == 12 and len(d.y_train) + len(d.y_val) == 40


@pytest.mark.parametrize("arrays, message", [
    ({"x": np.zeros((20, 4, 4))}, "expected arrays"),
    ({"x": np.zeros((20, 4)), "y": np.zeros(20)}, "shape"),
    ({"x": np.zeros((20, 4, 4)), "y": np.zeros(19)}, "labels"),
    ({"x": np.zeros((20, 4, 4)), "y": np.full(20, 0.5)}, "integer"),
    ({"x": np.zeros((20, 4, 4)), "y": np.zeros(20)}, "single class"),
    ({"x": np.full((20, 4, 4), np.nan), "y": np.arange(20) % 2}, "NaN"),
])
def test_malformed_npz_is_a_user_error(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(UserError, match=message):
        load_data(tmp_path / "bad.npz")


def test_unknown_dataset_name():
    with pytest.raises(UserError, match="unknown dataset"):
        load_data("imagenet-please")
