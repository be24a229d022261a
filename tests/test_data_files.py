"""Datasets from local files in every layout (tiny files built here; nothing downloads), augmentation, errors."""
from __future__ import annotations

import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

from archsearch.datasets.augment import augment_batch, cutout
from archsearch.datasets import load_data
from archsearch.errors import UserError

RNG = np.random.default_rng(0)


def write_cifar10(folder, side=8, per_batch=30, test=20):
    folder.mkdir(parents=True)
    for k in (1, 2):
        with open(folder / f"data_batch_{k}", "wb") as f:
            pickle.dump({b"batch_label": b"x", b"labels": list(RNG.integers(0, 10, per_batch)),
                         b"data": RNG.integers(0, 256, (per_batch, 3 * side * side), dtype=np.uint8)}, f)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"labels": [i % 10 for i in range(test)],
                     b"data": RNG.integers(0, 256, (test, 3 * side * side), dtype=np.uint8)}, f)
    return folder


def write_idx(path, array: np.ndarray, gz: bool):
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    (gzip.open if gz else open)(path, "wb").write(raw)


def write_mnist(folder, gz: bool, n=40, side=6):
    folder.mkdir(parents=True)
    sfx = ".gz" if gz else ""
    write_idx(folder / f"train-images-idx3-ubyte{sfx}", RNG.integers(0, 256, (n, side, side)), gz)
    write_idx(folder / f"train-labels-idx1-ubyte{sfx}", np.arange(n) % 10, gz)
    write_idx(folder / f"t10k-images-idx3-ubyte{sfx}", RNG.integers(0, 256, (20, side, side)), gz)
    write_idx(folder / f"t10k-labels-idx1-ubyte{sfx}", np.arange(20) % 10, gz)
    return folder


def write_images(folder, classes=("cat", "dog", "eel"), per_class=6, size=(12, 10), mode="RGB"):
    from PIL import Image

    for c in classes:
        (folder / c).mkdir(parents=True)
        for i in range(per_class):
            shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
            Image.fromarray(RNG.integers(0, 256, shape, dtype=np.uint8), mode).save(folder / c / f"{i}.png")
    return folder


def test_cifar10_python_batches(tmp_path):
    d = load_data(write_cifar10(tmp_path / "cifar-10-batches-py"))
    assert d.name == "cifar10" and d.shape.size == (3, 8, 8) and d.augment == "crop_flip"
    assert len(d.y_train) + len(d.y_val) == 60 and len(d.y_test) == 20 and d.num_classes == 10
    assert abs(float(d.x_train.mean())) < 0.05  # normalised with the training statistics


def test_cifar100_and_named_lookup_under_archsearch_data(tmp_path, monkeypatch):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for split, n in (("train", 60), ("test", 20)):
        with open(folder / split, "wb") as f:
            pickle.dump({b"fine_labels": list(np.arange(n) % 100), b"coarse_labels": [0] * n,
                         b"data": RNG.integers(0, 256, (n, 3 * 4 * 4), dtype=np.uint8)}, f)
    monkeypatch.setenv("ARCHSEARCH_DATA", str(tmp_path))
    d = load_data("cifar100")
    assert d.name == "cifar100" and d.shape.size == (3, 4, 4) and len(d.y_test) == 20
    with pytest.raises(UserError, match="nothing is downloaded"):
        load_data("cifar10")


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_idx_files_gzipped_or_not(tmp_path, gz, monkeypatch):
    write_mnist(tmp_path / "MNIST" / "raw", gz)
    d = load_data(tmp_path / "MNIST")
    assert d.shape.size == (1, 6, 6) and d.augment == "none" and len(d.y_test) == 20
    assert len(d.y_train) + len(d.y_val) == 40
    monkeypatch.setenv("ARCHSEARCH_DATA", str(tmp_path))
    assert load_data("mnist").shape.size == (1, 6, 6)


def test_image_folder_resized_rgb_and_gray(tmp_path):
    d = load_data(write_images(tmp_path / "pets"), image_size=8)
    assert d.shape.size == (3, 8, 8) and d.num_classes == 3 and d.augment == "crop_flip"
    assert len(d.y_train) + len(d.y_val) + len(d.y_test) == 18
    root = tmp_path / "split"
    write_images(root / "train", mode="L")
    write_images(root / "test", per_class=2, mode="L")
    d = load_data(root)
    assert d.shape.size == (1, 32, 32) and len(d.y_test) == 6


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing", "not found"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "no dataset layout recognised"),
    (lambda p: (p / "c.tar.gz").write_bytes(b"x") and p / "c.tar.gz", "extract it first"),
    (lambda p: write_images(p / "one", classes=("a",)), "at least two class"),
])
def test_bad_paths_and_layouts_are_one_line_errors(tmp_path, make, message):
    with pytest.raises(UserError, match=message) as e:
        load_data(make(tmp_path))
    assert "\n" not in str(e.value)


def test_truncated_idx_and_malicious_pickle_are_refused(tmp_path):
    folder = write_mnist(tmp_path / "m", gz=False)
    raw = (folder / "train-images-idx3-ubyte").read_bytes()
    (folder / "train-images-idx3-ubyte").write_bytes(raw[:-7])
    with pytest.raises(UserError, match="truncated"):
        load_data(folder)
    folder = write_cifar10(tmp_path / "c")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": Evil(), b"labels": [0]}, f)
    with pytest.raises(UserError, match="not a CIFAR python batch"):
        load_data(folder)


def test_augmentation_is_seeded_and_does_what_it_says():
    x = torch.arange(2 * 1 * 8 * 8, dtype=torch.float32).reshape(2, 1, 8, 8) + 1
    a = augment_batch(x, "crop_flip", torch.Generator().manual_seed(0))
    b = augment_batch(x, "crop_flip", torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, b)
    assert torch.equal(augment_batch(x, "none", torch.Generator()), x)
    flipped = {tuple(augment_batch(x, "flip", torch.Generator().manual_seed(s))[0, 0, 0].tolist()) for s in range(8)}
    assert flipped == {tuple(x[0, 0, 0].tolist()), tuple(x[0, 0, 0].flip(0).tolist())}
    c = cutout(x, 4, torch.Generator().manual_seed(1))
    zeros = (c == 0).flatten(1).sum(1)
    assert ((zeros >= 4) & (zeros <= 16)).all()  # a 4x4 square, clipped at the border
    with pytest.raises(ValueError, match="unknown augmentation"):
        augment_batch(x, "rotate", torch.Generator())
