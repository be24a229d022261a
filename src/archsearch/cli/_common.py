"""What the command modules share: the consoles, KEY=VALUE settings, printing a run's best and its reference
line, and the one-line error."""
from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, List

from rich.console import Console

from ..errors import UserError
from ..schedulers import epochs_text

console = Console()
err = Console(stderr=True)

# When the user's clock began: the process's start for the console command (``archsearch ...``, ``python -m
# archsearch.cli``), so that ``--seconds S`` covers start-up too (importing torch, the data, worker processes:
# 5-10 s on 2 cores); None (the search's own start) when the CLI is called inside another program.
CLOCK_START: float | None = None


def process_started() -> float | None:
    """When this process started, in ``time.time()`` units (Linux's /proc; None elsewhere)."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[19])  # field 22, starttime: clock ticks after boot
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return time.time() - max(0.0, uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError, AttributeError):  # pragma: no cover - not Linux
        return None


def parse_settings(items: List[str] | None, what: str) -> dict[str, Any]:
    """KEY=VALUE pairs; values are read as JSON when they parse (numbers, lists, true/false), else strings."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"bad {what} {item!r}: use KEY=VALUE")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def print_best(summary, space) -> None:
    c = summary.counts
    console.print(f"trials: {sum(c.values())} ({', '.join(f'{k} {v}' for k, v in sorted(c.items()))}) "
                  f"in {summary.elapsed_seconds:.0f}s; run directory {summary.run_dir}")
    if summary.best is None:
        console.print("[red]no trial finished successfully[/]")
        return
    b = summary.best
    console.print(f"best architecture (trial {b.number}): {space.format(b.arch)}")
    val, test = b.metrics.get("val_accuracy"), b.metrics.get("test_accuracy")
    console.print(f"val accuracy {pct(val)}  test accuracy {pct(test)}"
                  + (f"  params {int(b.metrics['params']):,}" if "params" in b.metrics else "")
                  + (f"  ({epochs_text(b.fidelity)} epochs)" if b.fidelity else ""))
    line = reference_line(summary)
    if line:
        console.print(line)


def reference_line(summary) -> str | None:
    """'best found vs reference: +x.xx points' (val, and test when known), said plainly when it did not win."""
    ref = summary.reference
    if not ref:
        return None
    if ref.get("status") != "ok":
        return f"hand-designed reference {ref.get('text')}: {ref.get('status')} ({ref.get('error') or 'no result'})"
    dv, dt = summary.versus_reference("val_accuracy"), summary.versus_reference("test_accuracy")
    if dv is None:
        return None
    m = ref.get("metrics", {})
    text = (f"best found vs reference: {dv:+.2f} points val" + ("" if dt is None else f", {dt:+.2f} test")
            + f" (reference {ref.get('text')}: val {pct(m.get('val_accuracy'))}, test {pct(m.get('test_accuracy'))})")
    if dv <= 0:
        text += "; the search did not beat the hand-designed reference"
    best_f, ref_f = summary.best.fidelity, ref.get("fidelity")
    if best_f and ref_f and float(best_f) < float(ref_f) - 1e-9:  # nobody reached the top rung in the budget
        text += (f"; the best found trained {epochs_text(best_f)} epochs, the reference {epochs_text(ref_f)}: "
                 "not a like-for-like comparison")
    return text


def pct(v: Any) -> str:
    return "-" if v is None else f"{v:.2f}%"


def num(v: Any, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def fail(message: str, code: int) -> None:
    # one line, whatever a path or name in the message holds: control characters are shown escaped
    message = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in " ".join(message.splitlines()))
    err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    sys.exit(code)


def input_shape(input_size: str | None, classes: int | None, data: str | None):
    from ..space import InputShape

    if input_size is None:
        from ..datasets import load_data
        s = load_data(data).shape
        return InputShape(s.channels, s.height, s.width, classes or s.num_classes)
    m = re.fullmatch(r"\s*(\d+)\s*[xX,]\s*(\d+)\s*[xX,]\s*(\d+)\s*", input_size)
    if m is None or min(int(g) for g in m.groups()) < 1:
        raise UserError(f"bad --input {input_size!r}: use CxHxW, e.g. 3x224x224")
    c, h, w = (int(g) for g in m.groups())
    return InputShape(c, h, w, classes or 1000)


def space_from_options(space: str, space_opt: List[str] | None):
    """``--space`` with its ``--space-opt KEY=VALUE`` settings."""
    from ..spaces import get_space

    return get_space(space, **parse_settings(space_opt, "space setting"))
