"""Loading files without executing code: every checkpoint, weights file and strategy state is read with
``torch.load(..., weights_only=True)`` (tensors, numbers, strings, lists, dicts only), so a run directory or
training folder someone else sent cannot run what a pickle in it says. A file that is not such a checkpoint is
refused in one line."""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from .errors import UserError


def safe_load(path: str | Path) -> Any:
    """``torch.load`` restricted to plain data; a crafted, truncated or foreign file is a UserError."""
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile,
            AttributeError, TypeError, KeyError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"{path} cannot be loaded safely ({first[:160]}); it is not an archsearch checkpoint, is "
                        "damaged, or holds code objects, which are never loaded") from None
