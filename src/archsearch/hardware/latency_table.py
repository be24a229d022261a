"""Per-op latency tables (FBNet, Wu et al., CVPR 2019; ProxylessNAS, Cai et al., ICLR 2019): profile every
candidate op of a space at every input shape it meets, once; predict a network's latency as the sum of its ops'
entries. Summing is what makes latency differentiable for one-shot search: the expected latency of a supernet
layer is the probability-weighted sum of its candidates' entries (:meth:`LatencyTable.layer_costs`).

A space takes part by (1) building models that list their *latency units* (``model.latency_units()`` ->
``[(key, module), ...]``: stem, blocks, head, each keyed by its configuration and input shape) and (2) listing
every unit it can produce (a function attribute ``enumerate_latency_units(shape, **config)`` on the space
function). The ``mbconv`` space does both.

The table is a JSON file: the entries (key -> milliseconds) and how they were measured (device, threads,
batch, repeats, space, input shape, torch version, load average).
"""
from __future__ import annotations

import json
import platform
import statistics
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import nn

from ..errors import UserError
from ..space import Architecture, InputShape, SearchSpace
from .cost import measure_latency

__all__ = ["LatencyTable", "profile_space", "latency_units", "space_units", "FORMAT"]

FORMAT = "archsearch-latency-table/1"
#: How a latency is taken from repeated timings: the field of one measurement (:class:`LatencyStats`) and the
#: same statistic over several passes.
STATISTICS: dict[str, tuple[str, Callable[[list[float]], float]]] = {
    "median": ("median_ms", statistics.median), "min": ("min_ms", min)}


def latency_units(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The model's latency units, or a UserError if its space does not define them."""
    fn = getattr(model, "latency_units", None)
    if fn is None:
        raise UserError(f"{type(model).__name__} does not list its latency units; per-op latency tables work for "
                        f"spaces that do (mbconv)")
    return fn()


def space_units(space: SearchSpace, shape: InputShape):
    """Every (key, factory, input shape) of the space at ``shape``, each once."""
    enum = getattr(space.fn, "enumerate_latency_units", None)
    if enum is None:
        raise UserError(f"space {space.name!r} does not list its latency units, so it cannot be profiled op by op "
                        f"(spaces that can: mbconv)")
    return enum(shape, **space.config)


@dataclass
class LatencyTable:
    """``entries``: unit key -> latency in ms (median); ``meta``: how, where and on what it was measured."""

    entries: dict[str, float]
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.entries)

    # ---- prediction -------------------------------------------------------------------------------------------
    def lookup(self, key: str) -> float:
        try:
            return self.entries[key]
        except KeyError:
            raise UserError(f"the latency table has no entry for {key} (it was profiled for space "
                            f"{self.meta.get('space', {}).get('name', '?')} at input {self.meta.get('input')}; "
                            f"profile this space and input size with `archsearch profile`)") from None

    def predict_model(self, model: nn.Module) -> float:
        """Predicted latency (ms) of a built model: the sum of its units' entries."""
        return float(sum(self.lookup(key) for key, _ in latency_units(model)))

    def predict(self, space: SearchSpace, arch: Architecture | Mapping[str, Any], shape: InputShape) -> float:
        """Predicted latency (ms) of ``arch``; the model is built on the meta device (no memory, no init)."""
        with torch.device("meta"):
            model = space.build(arch, shape)
        return self.predict_model(model)

    def layer_costs(self, space: SearchSpace, shape: InputShape, values: Mapping[str, Any] | None = None
                    ) -> dict[str, dict[str, float]]:
        """Per-decision costs for a supernet's expected-latency loss (ProxylessNAS Sec. 3.3, FBNet Sec. 3.2):
        ``{label: {option: ms}}`` for every ``layer`` decision whose candidates are latency units, the form
        ``strategies.oneshot.latency_loss`` reads. Value decisions take ``values[label]``, else (as the generic
        supernet fixes them) their largest number or their first option. Units that no decision chooses (stem,
        head) are the fixed cost: :meth:`fixed_cost`."""
        return _LayerCosts(self, space, shape, values).costs

    def fixed_cost(self, space: SearchSpace, shape: InputShape, values: Mapping[str, Any] | None = None) -> float:
        """Latency (ms) of the units that no layer decision chooses (stem, head, fixed blocks)."""
        return _LayerCosts(self, space, shape, values).fixed

    # ---- files --------------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        doc = {"format": FORMAT, **self.meta, "entries": dict(sorted(self.entries.items()))}
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(doc, indent=1))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "LatencyTable":
        path = Path(path).expanduser()
        if not path.is_file():
            raise UserError(f"latency table {path}: {'not a file' if path.exists() else 'no such file'}")
        try:
            doc = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise UserError(f"latency table {path}: cannot read it ({type(e).__name__}: {e})") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("entries"), dict):
            raise UserError(f"latency table {path}: not an archsearch latency table (made by `archsearch profile`)")
        entries = doc.pop("entries")
        doc.pop("format")
        try:
            return cls({str(k): float(v) for k, v in entries.items()}, doc)
        except (TypeError, ValueError):
            raise UserError(f"latency table {path}: an entry is not a number") from None


class _LayerCosts:
    """Runs the space function with a chooser that builds every candidate of every layer decision on the meta
    device (reading its ``spec``) and places the first in the model; the model's latency units then give each
    decision's input shape, which all its candidates share."""

    def __init__(self, table: LatencyTable, space: SearchSpace, shape: InputShape, values: Mapping | None = None):
        self.values = dict(values or {})
        self.specs: dict[str, tuple[int, dict[str, str]]] = {}  # label -> (id of the placed module, specs)
        with torch.device("meta"):
            model = space.build_with(self, shape)
        key_of = {id(m): key for key, m in latency_units(model)}
        placed = set()
        self.costs: dict[str, dict[str, float]] = {}
        for label, (mid, specs) in self.specs.items():
            if mid not in key_of:
                continue  # a decision whose candidates are not units (or inactive)
            placed.add(mid)
            at = key_of[mid].rpartition("@")[2]
            self.costs[label] = {name: table.lookup(f"{spec}@{at}") for name, spec in specs.items()}
        self.fixed = float(sum(table.lookup(k) for mid, k in key_of.items() if mid not in placed))

    def layer(self, label, candidates, active=None):
        mods = {name: factory() for name, factory in candidates.items()}
        first = next(iter(mods.values()))
        if active is not False and all(hasattr(m, "spec") for m in mods.values()):
            self.specs[label] = (id(first), {name: m.spec for name, m in mods.items()})
        return None if active is False else first

    def inputs(self, label, n_candidates, n_chosen=1, reduction="sum", active=None):
        from ..space import InputSelect
        return InputSelect(n_candidates, list(range(n_chosen or n_candidates)), reduction)

    def value(self, label, values, active=None):
        if label in self.values:
            return self.values[label]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        return max(values) if numeric else values[0]  # the generic supernet's rule for fixed values


def profile_space(space: SearchSpace, shape: InputShape, device: str = "cpu", threads: int | None = 1,
                  batch: int = 1, warmup: int = 3, repeats: int = 15, rounds: int = 1, max_seconds: float = 0.5,
                  limit: int | None = None, progress: Callable[[int, int], None] | None = None,
                  clock: str = "wall", statistic: str = "median") -> LatencyTable:
    """Measure every latency unit of ``space`` at ``shape`` once (``rounds`` > 1: several passes over all units,
    the median of the passes, so that a burst of load on the machine hits every entry a little rather than a
    few entries a lot). ``statistic`` of the timed runs (and passes) per entry: ``median`` or ``min`` (other
    processes only ever add time, so on a shared machine the fastest run is the steadier estimate of what the op
    costs).
    ``limit`` profiles only the first units (for tests)."""
    if statistic not in STATISTICS:
        raise UserError(f"unknown latency statistic {statistic!r}: use {' or '.join(STATISTICS)}")
    field_, across = STATISTICS[statistic]
    units = list(space_units(space, shape))
    if limit is not None:
        units = units[:limit]
    if rounds < 1:
        raise UserError("--rounds must be at least 1")
    per_round: dict[str, list[float]] = {key: [] for key, _, _ in units}
    loads: list[float] = []
    t0 = time.perf_counter()
    total = len(units) * rounds
    done = 0
    for _ in range(rounds):
        for key, factory, in_shape in units:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                module = factory()
            stats = measure_latency(module, in_shape, device=device, batch=batch, threads=threads, warmup=warmup,
                                    repeats=repeats, max_seconds=max_seconds, copy_model=False, clock=clock)
            per_round[key].append(getattr(stats, field_))
            if stats.load1 is not None:
                loads.append(stats.load1)
            done += 1
            if progress is not None:
                progress(done, total)
    entries = {k: across(v) for k, v in per_round.items()}  # over the rounds, as over the runs
    meta = {"space": {"name": space.name, "config": space.config}, "input": list(shape.size),
            "num_classes": shape.num_classes, "device": device, "threads": threads, "batch": batch,
            "warmup": warmup, "repeats": repeats, "rounds": rounds, "clock": clock, "statistic": statistic,
            "profile_seconds": time.perf_counter() - t0,
            "created": datetime.now().isoformat(timespec="seconds"), "torch": torch.__version__,
            "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
            "load1": {"min": min(loads), "max": max(loads), "mean": statistics.fmean(loads)} if loads else None}
    return LatencyTable(entries, meta)
