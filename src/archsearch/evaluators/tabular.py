"""Tabular evaluation: look an architecture up in a benchmark table instead of training it.

NAS-Bench-201 (Dong & Yang, ICLR 2020) trained every one of its 15,625 cells, so a search on its table costs a
dictionary lookup per query and strategies can be compared fairly over many seeds (the practice asked for by
Lindauer & Hutter, "Best Practices for Scientific Research on NAS", JMLR 2020).

The table is a CSV (optionally gzipped) with at least the columns ``arch`` (the benchmark's index),
``cellstr`` (the benchmark's cell string), ``cifar10-val`` (the search signal) and ``cifar10-test`` (for
reporting only). The CIFAR-10 12-epoch table ships with the package and is the default; any CSV with the same
columns works, so users can bring other tables of this space.
"""
from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..ops import NB201_PRIMITIVES
from ..result import FAILED, Result
from ..space import Architecture, ArchitectureError, SearchSpace
from ..spaces.nb201 import EDGES, edge_label, from_string
from .base import register_evaluator
from .metrics_table import open_text as _open_text

__all__ = ["TabularEvaluator", "TableRow", "cell_key", "load_table", "default_table_path", "DEFAULT_TABLE", "COLUMNS"]

DEFAULT_TABLE = "nb201_cifar10_12ep.csv.gz"
DEFAULT_COST_TABLE = "nb201_cifar10_cost.csv.gz"  # per cell: CIFAR-10 training seconds per epoch, eval seconds
VAL, TEST = "cifar10-val", "cifar10-test"
COLUMNS = ("arch", "cellstr", VAL, TEST)
_LABELS = tuple(edge_label(i, j) for i, j in EDGES)  # the cell string's edge order
TABLE_EPOCHS = 12  # the shipped table's training length (NAS-Bench-201's short-training setting)


@dataclass(frozen=True)
class TableRow:
    """One benchmark row: the benchmark's index and the accuracies (percent)."""

    arch_index: int
    val_accuracy: float
    test_accuracy: float


def default_table_path() -> Path:
    """The CIFAR-10 12-epoch NAS-Bench-201 table shipped as package data."""
    ref = resources.files("archsearch").joinpath("data", DEFAULT_TABLE)
    path = Path(str(ref))
    if not path.is_file():  # pragma: no cover - only for zipped installs
        raise UserError(f"the packaged table {DEFAULT_TABLE} is missing from this install; pass --table FILE")
    return path


def _number(text: str, column: str, path: Path, line: int) -> float:
    try:
        x = float(text)
    except (TypeError, ValueError):
        raise UserError(f"{path}: line {line}: {column} is {text!r}, not a number") from None
    if math.isnan(x):
        raise UserError(f"{path}: line {line}: {column} is missing (NaN)")
    return x


_CELL = re.compile(r"\|(\w+)~0\|\+\|(\w+)~0\|(\w+)~1\|\+\|(\w+)~0\|(\w+)~1\|(\w+)~2\|")
_OPS = frozenset(NB201_PRIMITIVES)
CellKey = tuple[str, ...]


def cell_key(arch: Architecture) -> CellKey:
    """The six edge ops of an nb201 architecture in the cell string's order: the table's key."""
    return tuple(arch[label] for label in _LABELS)


def _parse_cell(text: str) -> CellKey:
    m = _CELL.fullmatch(text)
    if m is not None and _OPS.issuperset(m.groups()):
        return m.groups()
    return cell_key(from_string(text))  # the slow path: lenient spacing, precise error messages


def _parse_cell_or_none(text: str) -> CellKey | None:
    try:
        return _parse_cell(text)
    except ArchitectureError:
        return None


def load_table(path: str | Path) -> dict[CellKey, TableRow]:
    """Read a NAS-Bench-201 table into ``{cell key: TableRow}`` (see :func:`cell_key`). Raises UserError (one
    line, naming the file and the problem) for an unreadable file, a missing column, a bad number, a bad or
    duplicated cell string."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"table {path}: {'not a file' if path.exists() else 'no such file'}")
    rows: dict[CellKey, TableRow] = {}
    first_line: dict[CellKey, int] = {}
    try:
        with _open_text(path) as f:
            reader = csv.reader(f)
            header = [h.strip() for h in next(reader, [])]
            missing = [c for c in COLUMNS if c not in header]
            if missing:
                raise UserError(f"table {path}: missing column(s) {', '.join(missing)} "
                                f"(a table needs {', '.join(COLUMNS)})")
            i_arch, i_cell, i_val, i_test = (header.index(c) for c in COLUMNS)
            for line, rec in enumerate(reader, start=2):
                if not rec:
                    continue
                if len(rec) < len(header):
                    raise UserError(f"{path}: line {line}: {len(rec)} fields, the header has {len(header)}")
                try:
                    key = _parse_cell(rec[i_cell])
                except ArchitectureError as e:
                    raise UserError(f"{path}: line {line}: cell string does not parse: {e}") from None
                if key in rows:
                    raise UserError(f"{path}: line {line}: cell {rec[i_cell]} already given on line "
                                    f"{first_line[key]}")
                idx = _number(rec[i_arch], "arch", path, line)
                if idx != int(idx):
                    raise UserError(f"{path}: line {line}: arch is {rec[i_arch]!r}, not an integer index")
                rows[key] = TableRow(int(idx), _number(rec[i_val], VAL, path, line),
                                     _number(rec[i_test], TEST, path, line))
                first_line[key] = line
    except UserError:
        raise
    except (OSError, UnicodeDecodeError, csv.Error, EOFError) as e:
        raise UserError(f"table {path}: cannot read it ({type(e).__name__}: {e})") from None
    if not rows:
        raise UserError(f"table {path}: no rows")
    return rows


def _check_space(space: SearchSpace) -> None:
    """The table is about the NAS-Bench-201 cell: the space must decide exactly its six edges (other
    configuration, such as channels or cells per stage, does not change the cell and is allowed)."""
    want = {edge_label(i, j) for i, j in EDGES}
    have = {d.label for d in space.decisions}
    if have != want or any(d.kind != "layer" for d in space.decisions):
        raise UserError(f"the tabular evaluator looks up NAS-Bench-201 cells; space {space.name!r} is not the "
                        f"nb201 space (use --space nb201)")


@register_evaluator("tabular")
class TabularEvaluator:
    """Looks an nb201 architecture up in a table (loaded once). A cell missing from the table gives a failed
    Result, not an exception.

    Further metric tables (``metrics_tables``: CSV files joined on ``arch``, see :mod:`.metrics_table`) add
    their columns to every result; by default the packaged six-device latency table of NAS-Bench-201 is joined
    (``metrics_tables=[]`` joins none). ``hardware=DEVICE`` also reports the column ``DEVICE_ms`` as
    ``latency_ms``, so that latency constraints and Pareto objectives work on the table.

    Simulated cost (``Result.cost_seconds`` and the metric ``train_seconds``), so that time-budgeted comparisons
    run on a virtual clock (Syne Tune's simulated backend): ``seconds_per_query + seconds_per_epoch * epochs``,
    where ``epochs`` is the table's training length (12) and ``seconds_per_epoch`` by default each cell's own
    measured CIFAR-10 training seconds per epoch (``cost_table``, shipped; NAS-Bench-201's protocol charges the
    training time, not the evaluation: 12,000 s hold about 109 queries). ``cost_table=None`` with the rates
    given charges every cell the same. ``fidelity`` is ignored: a table holds one training length.
    """

    reports = frozenset({"val_accuracy", "test_accuracy", "arch_index", "train_seconds"})
    fidelities = ()  # (one row per cell: the table's 12 epochs)

    @classmethod
    def reported_metrics(cls, options: dict[str, Any]) -> set[str]:
        """``reports`` plus the joined metric tables' columns (and ``latency_ms`` for ``hardware``)."""
        from .metrics_table import reported_metrics
        return set(cls.reports) | reported_metrics(options.get("metrics_tables"), options.get("hardware"))

    name = "tabular"

    def __init__(self, space: SearchSpace, table: str | Path | None = None, seconds_per_query: float = 0.0,
                 seconds_per_epoch: float = 0.0, epochs: int = TABLE_EPOCHS,
                 metrics_tables: str | Path | list[str | Path] | None = None, hardware: str | None = None,
                 cost_table: str | None = "default"):
        _check_space(space)
        if seconds_per_query < 0 or seconds_per_epoch < 0 or epochs < 0:
            raise UserError("tabular evaluator: seconds_per_query, seconds_per_epoch and epochs must be >= 0")
        self.space = space
        self.table = None if table is None else str(table)
        self.table_path = default_table_path() if table is None else Path(table).expanduser()
        self.seconds_per_query = float(seconds_per_query)
        self.seconds_per_epoch = float(seconds_per_epoch)
        self.epochs = int(epochs)
        self.cost_seconds = self.seconds_per_query + self.seconds_per_epoch * self.epochs
        self.rows = load_table(self.table_path)
        # the hot path: cell key -> ready metrics dict (copied per result, so callers may mutate theirs)
        self._metrics = {k: {"val_accuracy": r.val_accuracy, "test_accuracy": r.test_accuracy,
                             "arch_index": float(r.arch_index)} for k, r in self.rows.items()}
        self.metrics_tables = self._join(metrics_tables, hardware)
        self.hardware = hardware
        self.cost_table = cost_table
        self._costs = self._load_costs(cost_table) if cost_table is not None and seconds_per_epoch == 0 else {}
        for key, c in self._costs.items():
            self._metrics[key]["train_seconds"] = c

    def _load_costs(self, cost_table: str) -> dict[CellKey, float]:
        """cell key -> simulated seconds of one query (``epochs`` x the cell's training seconds per epoch)."""
        from .metrics_table import load_metrics_table
        path = Path(str(resources.files("archsearch").joinpath("data", DEFAULT_COST_TABLE))) \
            if cost_table == "default" else Path(cost_table).expanduser()
        table = load_metrics_table(path)
        if "train_seconds_per_epoch" not in table.columns:
            raise UserError(f"cost table {path}: no column train_seconds_per_epoch")
        out = {}
        for key, row in self.rows.items():
            got = table.rows.get(row.arch_index)
            if got is not None and got.get("train_seconds_per_epoch") is not None:
                out[key] = self.seconds_per_query + float(got["train_seconds_per_epoch"]) * self.epochs
        return out

    def _join(self, tables: str | Path | list[str | Path] | None, hardware: str | None) -> list[str] | None:
        """Add the columns of the metrics tables (and ``latency_ms`` for ``hardware``) to every row."""
        from .metrics_table import default_metrics_table_path, device_column, load_metrics_table

        given = None if tables is None else [str(t) for t in ([tables] if isinstance(tables, (str, Path))
                                                              else tables)]
        paths = [default_metrics_table_path()] if given is None else [Path(t).expanduser() for t in given]
        loaded = [load_metrics_table(p) for p in paths]
        columns = [c for t in loaded for c in t.columns]
        dup = sorted({c for c in columns if columns.count(c) > 1})
        if dup:
            raise UserError(f"metrics tables: column(s) {', '.join(dup)} given by more than one table")
        latency = device_column(hardware, columns, paths) if hardware is not None else None
        by_cell = [self._by_cell(t) for t in loaded]
        for key, row in self.rows.items():
            m = self._metrics[key]
            for t, cells in zip(loaded, by_cell):
                extra = t.rows.get(cells[key] if cells is not None and key in cells else row.arch_index)
                if extra is not None and (cells is None or key in cells):
                    m.update(extra)
            if latency is not None and latency in m:
                m["latency_ms"] = m[latency]
        self.metric_columns = tuple(columns) + (("latency_ms",) if latency else ())
        return given

    @staticmethod
    def _by_cell(table: Any) -> dict[CellKey, int] | None:
        """cell key -> the metrics table's index, when it has cell strings (then the join is by cell, so that an
        accuracy table numbered differently still meets the right rows); None: join on ``arch``."""
        if not table.cells:
            return None
        out: dict[CellKey, int] = {}
        for idx, text in table.cells.items():
            key = _parse_cell_or_none(text)
            if key is None:
                raise UserError(f"metrics table {table.path}: arch {idx}: cell string {text!r} does not parse")
            out[key] = idx
        return out

    def __len__(self) -> int:
        return len(self.rows)

    def evaluate(self, arch: Architecture, seed: int = 0, fidelity: float | None = None) -> Result:
        try:
            m = self._metrics.get(cell_key(arch))
        except KeyError:  # not an nb201 architecture at all
            m = None
        if m is None:
            return Result(status=FAILED, error=f"cell {self._describe(arch)} is not in table {self.table_path}",
                          cost_seconds=self.cost_seconds)
        return Result(metrics=dict(m), cost_seconds=m.get("train_seconds", self.cost_seconds))

    def lookup(self, arch: Architecture) -> TableRow | None:
        """The table row of ``arch`` (None when the table lacks it)."""
        try:
            return self.rows.get(cell_key(arch))
        except KeyError:
            return None

    def best(self) -> tuple[Architecture, TableRow]:
        """The table's best cell by validation accuracy (the oracle a search is measured against)."""
        key, row = max(self.rows.items(), key=lambda kv: kv[1].val_accuracy)
        return Architecture(zip(_LABELS, key)), row

    def config(self) -> dict[str, Any]:
        cfg = {"table": self.table, "seconds_per_query": self.seconds_per_query,
               "seconds_per_epoch": self.seconds_per_epoch, "epochs": self.epochs, "cost_table": self.cost_table}
        if self.metrics_tables is not None:
            cfg["metrics_tables"] = list(self.metrics_tables)
        if self.hardware is not None:
            cfg["hardware"] = self.hardware
        return cfg

    def _describe(self, arch: Architecture) -> str:
        try:
            return self.space.format(arch)
        except (KeyError, ArchitectureError):
            return str(arch)
