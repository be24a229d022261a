"""Loading files without executing code: every checkpoint, weights file and strategy state is read with
``torch.load(..., weights_only=True)`` (tensors, numbers, strings, lists, dicts only), so a run directory or
training folder someone else sent cannot run what a pickle in it says. A file that is not such a checkpoint is
refused in one line."""
from __future__ import annotations

import pickle
import re
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
        raise UserError(f"{path} cannot be loaded safely ({_reason(e)}); it is not an archsearch checkpoint, is "
                        "damaged, or holds code objects, which are never loaded") from None


def _reason(e: BaseException) -> str:
    """What torch's refusal names (the global a pickle asked for), without its advice to load unsafely."""
    text = str(e)
    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text) or re.search(r"Unsupported operand \d+", text)
    if found:
        return f"it would call {found.group(1)}" if found.groups() else found.group(0)
    if "Weights only load failed" in text:
        return "it holds objects other than tensors and plain data"
    first = re.sub(r"\x1b\[[0-9;]*m", "", text).strip().splitlines()
    return first[0][:160] if first else type(e).__name__
