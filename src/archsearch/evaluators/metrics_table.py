"""Further metric tables for the tabular evaluator, joined on the benchmark's ``arch`` index.

A metrics table is a CSV (optionally gzipped) with an ``arch`` column (the benchmark's index, as in the accuracy
table), optionally ``cellstr`` (then rows are matched by cell, so that a table numbered differently still joins
right), and any number of numeric columns; each becomes a metric of the tabular evaluator's results under its column name. The packaged
default for NAS-Bench-201 is the measured inference latency of every cell on six devices (HW-NAS-Bench, Li et al.,
ICLR 2021, as distributed with HELP, Lee et al., NeurIPS 2021): ``pixel3_ms``, ``raspi4_ms``, ``fpga_ms``,
``eyeriss_ms``, ``xeon_gold_6226_ms``, ``titan_rtx_ms``.

``hardware=DEVICE`` makes the column ``DEVICE_ms`` (or ``DEVICE``) the ``latency_ms`` of each result, so that
latency constraints, MnasNet rewards and Pareto objectives read a table exactly as they read a measured model.
"""
from __future__ import annotations

import csv
import gzip
import io
import math
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import UserError

__all__ = ["MetricsTable", "load_metrics_table", "default_metrics_table_path", "DEFAULT_METRICS_TABLE",
           "device_column", "table_columns"]

DEFAULT_METRICS_TABLE = "nb201_latency.csv.gz"
_NAME = re.compile(r"[A-Za-z_]\w*")
_RESERVED = frozenset({"arch", "cellstr", "val_accuracy", "test_accuracy", "arch_index", "latency_ms"})


def open_text(path: Path) -> io.TextIOBase:
    """A table's text, read as CSV: ``.csv`` or gzipped ``.csv.gz`` (the accuracy and the metrics tables)."""
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def default_metrics_table_path() -> Path:
    """The NAS-Bench-201 six-device latency table shipped as package data."""
    path = Path(str(resources.files("archsearch").joinpath("data", DEFAULT_METRICS_TABLE)))
    if not path.is_file():  # pragma: no cover - only for broken installs
        raise UserError(f"the packaged table {DEFAULT_METRICS_TABLE} is missing from this install; "
                        f"pass --metrics-table FILE")
    return path


@dataclass
class MetricsTable:
    """Numeric columns of one table, by benchmark index: ``rows[arch_index] = {column: value}``."""

    path: Path
    columns: tuple[str, ...]
    rows: dict[int, dict[str, float]]
    cells: dict[int, str]  # arch index -> cell string, when the table has one


def _header(path: Path) -> list[str]:
    if not path.is_file():
        raise UserError(f"metrics table {path}: {'not a file' if path.exists() else 'no such file'}")
    try:
        with open_text(path) as f:
            return [h.strip() for h in next(csv.reader(f), [])]
    except (OSError, UnicodeDecodeError, csv.Error, EOFError) as e:
        raise UserError(f"metrics table {path}: cannot read it ({type(e).__name__}: {e})") from None


def table_columns(path: str | Path) -> tuple[str, ...]:
    """The metric columns of a metrics table (every column but ``arch`` and ``cellstr``), read from its header."""
    path = Path(path).expanduser()
    header = _header(path)
    if "arch" not in header:
        raise UserError(f"metrics table {path}: no 'arch' column (the benchmark index to join on)")
    cols = tuple(h for h in header if h not in ("arch", "cellstr"))
    for c in cols:
        if not _NAME.fullmatch(c) or c in _RESERVED:
            raise UserError(f"metrics table {path}: column {c!r} cannot be a metric name "
                            f"(use letters, digits and _, and none of {', '.join(sorted(_RESERVED))})")
    if not cols:
        raise UserError(f"metrics table {path}: no metric columns besides arch/cellstr")
    return cols


def load_metrics_table(path: str | Path) -> MetricsTable:
    """Read a metrics table. One-line UserError for a missing file, a missing ``arch`` column, a bad number or a
    repeated index. Empty fields (and NaN) mean "not measured": the metric is left out of that row."""
    path = Path(path).expanduser()
    cols = table_columns(path)
    rows: dict[int, dict[str, float]] = {}
    cells: dict[int, str] = {}
    try:
        with open_text(path) as f:
            reader = csv.reader(f)
            header = [h.strip() for h in next(reader)]
            i_arch = header.index("arch")
            i_cell = header.index("cellstr") if "cellstr" in header else None
            where = [(c, header.index(c)) for c in cols]
            for line, rec in enumerate(reader, start=2):
                if not rec:
                    continue
                if len(rec) < len(header):
                    raise UserError(f"{path}: line {line}: {len(rec)} fields, the header has {len(header)}")
                try:
                    idx = float(rec[i_arch])
                except ValueError:
                    idx = math.nan
                if math.isnan(idx) or idx != int(idx):
                    raise UserError(f"{path}: line {line}: arch is {rec[i_arch]!r}, not an integer index")
                if int(idx) in rows:
                    raise UserError(f"{path}: line {line}: arch {int(idx)} appears twice")
                row: dict[str, float] = {}
                for c, i in where:
                    text = rec[i].strip()
                    if not text:
                        continue
                    try:
                        x = float(text)
                    except ValueError:
                        raise UserError(f"{path}: line {line}: {c} is {text!r}, not a number") from None
                    if not math.isnan(x):
                        row[c] = x
                rows[int(idx)] = row
                if i_cell is not None:
                    cells[int(idx)] = rec[i_cell].strip()
    except UserError:
        raise
    except (OSError, UnicodeDecodeError, csv.Error, EOFError) as e:
        raise UserError(f"metrics table {path}: cannot read it ({type(e).__name__}: {e})") from None
    if not rows:
        raise UserError(f"metrics table {path}: no rows")
    return MetricsTable(path, cols, rows, cells)


def device_column(hardware: str, columns: Iterable[str], tables: Sequence[str | Path] = ()) -> str:
    """The column that ``--hardware DEVICE`` names: ``DEVICE_ms`` or ``DEVICE`` (UserError listing the devices
    the tables offer otherwise)."""
    columns = list(columns)
    for c in (f"{hardware}_ms", hardware):
        if c in columns:
            return c
    devices = [c[:-3] for c in columns if c.endswith("_ms")] or columns
    where = f" in {', '.join(str(t) for t in tables)}" if tables else ""
    raise UserError(f"unknown hardware {hardware!r}{where}; choose from: {', '.join(devices) or '(none)'}")


def reported_metrics(tables: Sequence[str | Path] | None, hardware: str | None) -> set[str]:
    """The metrics the tables add (read from their headers; the packaged latency table when ``tables`` is None),
    plus ``latency_ms`` for ``hardware`` (checked). For the command line's early checks."""
    paths = [default_metrics_table_path()] if tables is None else [Path(t).expanduser() for t in tables]
    cols = [c for p in paths for c in table_columns(p)]
    if hardware is not None:
        device_column(hardware, cols, paths if tables is not None else ())
        cols.append("latency_ms")
    return set(cols)
