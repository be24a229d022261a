"""Datasets read from local files, in the layouts people already have on disk (nothing is ever downloaded):

* CIFAR-10 / CIFAR-100 in their standard python batch layout (``cifar-10-batches-py/data_batch_1..5, test_batch``;
  ``cifar-100-python/train, test``; Krizhevsky, 2009), read with a restricted unpickler that only rebuilds numpy
  arrays;
* MNIST / Fashion-MNIST IDX files (``train-images-idx3-ubyte[.gz]`` ..., LeCun et al. 1998; Xiao et al. 2017),
  gzipped or not, also inside torchvision's ``MNIST/raw`` folders;
* an image folder: one sub-folder per class (or ``train/`` and ``test/`` (and ``val/``) each holding them), every
  image resized to ``image_size`` (Pillow);
* ``.npz`` arrays (:func:`archsearch.datasets.load_npz`).

:func:`resolve` turns ``--data NAME_OR_PATH`` into a :class:`~archsearch.datasets.Dataset`: a registered name
(``cifar10``, ``cifar100``, ``mnist``, ``fashion-mnist`` look in ``$ARCHSEARCH_DATA``, default ``./data``, then
``~/.archsearch/data``) or a path whose layout is recognised. Where a dataset has no validation split, 10% of the
training split (stratified, fixed seed) becomes one. Augmentation names follow the dataset: ``crop_flip`` (random
crop with 4-pixel padding and horizontal flip) for CIFAR and image folders, ``none`` for digits.
"""
from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
DEFAULT_IMAGE_SIZE = 32
#: Where named datasets are looked for, and the sub-folder names each may have (torchvision's and the archives').
NAMED_FOLDERS: dict[str, tuple[str, ...]] = {
    "cifar10": ("cifar-10-batches-py", "cifar10", "cifar-10"),
    "cifar100": ("cifar-100-python", "cifar100", "cifar-100"),
    "mnist": ("MNIST/raw", "MNIST", "mnist"),
    "fashion-mnist": ("FashionMNIST/raw", "FashionMNIST", "fashion-mnist", "fashion_mnist"),
}
_IDX_FILES = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
              "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}


def data_roots() -> list[Path]:
    env = os.environ.get("ARCHSEARCH_DATA")
    roots = [Path(env)] if env else [Path("data")]
    return roots + [Path.home() / ".archsearch" / "data"]


# ----------------------------------------------------------------------------------------------------------------
# Resolution
# ----------------------------------------------------------------------------------------------------------------
def find_named(name: str) -> Path:
    """The local folder of a named dataset, or a one-line error saying where it was looked for."""
    for root in data_roots():
        for sub in NAMED_FOLDERS[name]:
            if (root / sub).is_dir() and detect_layout(root / sub) is not None:
                return root / sub
    where = ", ".join(str(r) for r in data_roots())
    raise UserError(f"{name}: no local copy found under {where} (looked for {', '.join(NAMED_FOLDERS[name])}); "
                    f"nothing is downloaded: put the files there, set ARCHSEARCH_DATA, or pass --data PATH")


def detect_layout(path: Path) -> str | None:
    """'cifar10', 'cifar100', 'idx', 'folder' or None for a directory; 'npz' for a .npz file."""
    if path.is_file():
        return "npz" if path.suffix == ".npz" else None
    if (path / "data_batch_1").is_file() and (path / "test_batch").is_file():
        return "cifar10"
    if (path / "train").is_file() and (path / "test").is_file():
        return "cifar100"
    if _idx_file(path, _IDX_FILES["x_train"]) is not None:
        return "idx"
    if any(_class_dirs(path)) or any(_class_dirs(path / "train")):
        return "folder"
    return None


def load_path(path: Path, image_size: int | None = None):
    """Load the dataset at ``path`` (a directory in one of the layouts above, or a .npz file)."""
    from .core import load_npz

    if not path.exists():
        raise UserError(f"data path not found: {path}")
    if path.is_file() and path.name.endswith((".tar.gz", ".tgz", ".tar", ".zip")):
        raise UserError(f"{path} is an archive; extract it first (e.g. tar xzf {path.name}) and pass the folder")
    layout = detect_layout(path)
    loaders: dict[str, Callable] = {"npz": load_npz, "cifar10": load_cifar10, "cifar100": load_cifar100,
                                    "idx": load_idx}
    if layout in loaders:
        return loaders[layout](path)
    if layout == "folder":
        return load_image_folder(path, image_size or DEFAULT_IMAGE_SIZE)
    if path.is_file():
        raise UserError(f"{path}: unknown data file; give a .npz file or a folder (CIFAR python batches, MNIST IDX "
                        f"files, or one sub-folder of images per class)")
    raise UserError(f"{path}: no dataset layout recognised (CIFAR-10 data_batch_1..5 + test_batch, CIFAR-100 "
                    f"train + test, MNIST IDX train-images-idx3-ubyte[.gz] ..., or one sub-folder of images per "
                    f"class)")


# ----------------------------------------------------------------------------------------------------------------
# CIFAR (python batches)
# ----------------------------------------------------------------------------------------------------------------
class _ArrayUnpickler(pickle.Unpickler):
    """Rebuilds only what the CIFAR batches hold (dicts, lists, bytes, numpy arrays): a batch file cannot run code."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR batch")
        return super().find_class(module, name)


def _read_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            d = _ArrayUnpickler(f, encoding="bytes").load()
        data = d.get(b"data", d.get("data"))
        labels = d.get(label_key.encode(), d.get(label_key))
        x = np.asarray(data, dtype=np.uint8)
        y = np.asarray(labels, dtype=np.int64)
    except FileNotFoundError:
        raise UserError(f"CIFAR batch missing: {path}") from None
    except Exception as e:
        raise UserError(f"{path}: not a CIFAR python batch ({type(e).__name__}: {e})") from None
    if x.ndim != 2 or x.shape[1] % 3 or len(x) != len(y):
        raise UserError(f"{path}: expected 'data' of shape (N, 3*H*W) and N {label_key}, got {x.shape} and {y.shape}")
    side = int(round((x.shape[1] // 3) ** 0.5))
    if 3 * side * side != x.shape[1]:
        raise UserError(f"{path}: rows of {x.shape[1]} values are not square RGB images")
    return x.reshape(-1, 3, side, side), y


def load_cifar10(path: Path):
    """CIFAR-10's ``data_batch_1..5`` (train) and ``test_batch``."""
    batches = sorted(path.glob("data_batch_*"), key=lambda p: p.name)
    parts = [_read_batch(p, "labels") for p in batches]
    x, y = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    xt, yt = _read_batch(path / "test_batch", "labels")
    return _with_val("cifar10", x, y, xt, yt, augment="crop_flip")


def load_cifar100(path: Path):
    """CIFAR-100's ``train`` and ``test`` (the 100 fine labels)."""
    x, y = _read_batch(path / "train", "fine_labels")
    xt, yt = _read_batch(path / "test", "fine_labels")
    return _with_val("cifar100", x, y, xt, yt, augment="crop_flip")


# ----------------------------------------------------------------------------------------------------------------
# MNIST / Fashion-MNIST (IDX)
# ----------------------------------------------------------------------------------------------------------------
def _idx_file(path: Path, stem: str) -> Path | None:
    for folder in (path, path / "raw"):
        for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
            if (folder / name).is_file():
                return folder / name
    return None


def read_idx(path: Path) -> np.ndarray:
    """One IDX file (gzipped or not): a big-endian magic number (0, 0, type, ndim), ndim sizes, then the data."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise UserError(f"{path}: broken gzip file ({e})") from None
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in dtypes:
        raise UserError(f"{path}: not an IDX file (bad magic number)")
    ndim = raw[3]
    dims = np.frombuffer(raw, ">u4", count=ndim, offset=4).astype(int) if len(raw) >= 4 + 4 * ndim else None
    dtype = np.dtype(dtypes[raw[2]])
    if dims is None or len(raw) != 4 + 4 * ndim + int(np.prod(dims)) * dtype.itemsize:
        raise UserError(f"{path}: IDX file is truncated or its sizes do not match its length")
    return np.frombuffer(raw, dtype, offset=4 + 4 * ndim).reshape(dims)


def load_idx(path: Path):
    """MNIST-layout IDX files: train/t10k images (N, H, W) and labels (N,). Fashion-MNIST uses the same names."""
    arrays = {}
    for key, stem in _IDX_FILES.items():
        f = _idx_file(path, stem)
        if f is None:
            raise UserError(f"{path}: {stem}[.gz] is missing (MNIST IDX layout needs the four train/t10k files)")
        arrays[key] = read_idx(f)
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise UserError(f"{path}: {split} images {x.shape} and labels {y.shape} do not match")
    name = "fashion-mnist" if "fashion" in str(path).lower() else "mnist"
    return _with_val(name, arrays["x_train"][:, None], arrays["y_train"], arrays["x_test"][:, None],
                     arrays["y_test"], augment="none")


# ----------------------------------------------------------------------------------------------------------------
# Image folder
# ----------------------------------------------------------------------------------------------------------------
def _class_dirs(path: Path) -> list[Path]:
    if not path.is_dir():
        return []
    return sorted(d for d in path.iterdir() if d.is_dir() and any(
        f.suffix.lower() in IMAGE_SUFFIXES for f in d.iterdir() if f.is_file()))


def _read_folder(path: Path, classes: list[str], size: int) -> tuple[list, np.ndarray]:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow comes with matplotlib
        raise UserError("reading an image folder needs Pillow: pip install pillow") from None
    images, labels = [], []
    for k, cls in enumerate(classes):
        folder = path / cls
        if not folder.is_dir():
            raise UserError(f"{path}: class folder {cls!r} is missing (the splits must have the same classes)")
        for f in sorted(folder.iterdir()):
            if f.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                with Image.open(f) as im:
                    im.load()
                    images.append(im.resize((size, size), Image.BILINEAR) if im.size != (size, size) else im.copy())
            except Exception as e:
                raise UserError(f"{f}: cannot read image ({type(e).__name__}: {e})") from None
            labels.append(k)
    return images, np.asarray(labels, dtype=np.int64)


def _to_array(images: list, gray: bool) -> np.ndarray:
    mode = "L" if gray else "RGB"
    arr = np.stack([np.asarray(im.convert(mode), dtype=np.uint8) for im in images])
    return arr[:, None] if gray else arr.transpose(0, 3, 1, 2)


def load_image_folder(path: Path, size: int = DEFAULT_IMAGE_SIZE):
    """One sub-folder per class (class index = sorted folder names), or ``train/``, ``test/`` (and optionally
    ``val/``) each with the same class folders. Images are resized to ``size`` x ``size``; grayscale when every
    image is, RGB otherwise. Without a test split the images are split 60/20/20 (stratified)."""
    from .core import make_dataset, split_arrays

    if size < 4:
        raise UserError(f"image size must be at least 4, got {size}")
    split_root = path / "train" if _class_dirs(path / "train") else None
    classes = [d.name for d in _class_dirs(split_root or path)]
    if len(classes) < 2:
        raise UserError(f"{path}: an image folder needs at least two class sub-folders with images, found "
                        f"{len(classes)}")
    if split_root is None:
        images, y = _read_folder(path, classes, size)
        gray = all(im.mode in ("L", "1", "I;16", "I") for im in images)
        return split_arrays(path.name, _to_array(images, gray) / np.float32(255), y, augment="crop_flip")
    splits = {s: _read_folder(path / s, classes, size) for s in ("train", "val", "test") if (path / s).is_dir()}
    if "test" not in splits:
        raise UserError(f"{path}: has train/ but no test/ folder")
    gray = all(im.mode in ("L", "1", "I;16", "I") for imgs, _ in splits.values() for im in imgs)
    arrays = {s: (_to_array(imgs, gray) / np.float32(255), y) for s, (imgs, y) in splits.items()}
    if "val" in arrays:
        return make_dataset(path.name, *arrays["train"], *arrays["val"], *arrays["test"], augment="crop_flip")
    return _with_val(path.name, *arrays["train"], *arrays["test"], augment="crop_flip")


# ----------------------------------------------------------------------------------------------------------------
def _with_val(name: str, x, y, x_test, y_test, augment: str, val_fraction: float = 0.1):
    """A dataset whose validation split is ``val_fraction`` of the training split (stratified, seed 0)."""
    from sklearn.model_selection import train_test_split

    from .core import make_dataset

    if x.dtype == np.uint8:
        x, x_test = x.astype(np.float32) / 255.0, x_test.astype(np.float32) / 255.0
    if len(np.unique(y)) < 2:
        raise UserError(f"{name}: the training split has a single class")
    idx = np.arange(len(y))
    strat = y if np.bincount(y).min() >= 2 and int(len(y) * val_fraction) >= len(np.unique(y)) else None
    tr, va = train_test_split(idx, test_size=val_fraction, random_state=0, stratify=strat)
    return make_dataset(name, x[tr], y[tr], x[va], y[va], x_test, y_test, augment=augment)
