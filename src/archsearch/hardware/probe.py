"""What an evaluator asks of the hardware module for every trial: the static cost (params, FLOPs, MACs; cheap,
always), the latency predicted by a per-op table (when one is given) and the latency measured on a device (when
asked, after training, with pinned threads: see :func:`archsearch.hardware.cost.measure_latency`)."""
from __future__ import annotations

import json
from typing import Any

from torch import nn

from ..errors import UserError
from ..space import InputShape, SearchSpace
from .cost import measure_latency, model_cost
from .latency_table import LatencyTable


class HardwareProbe:
    """Per-trial hardware metrics. ``latency_device`` None: latency is not measured. ``latency_table``: a file
    made by ``archsearch profile`` for this space and input size (adds ``predicted_latency_ms``)."""

    def __init__(self, space: SearchSpace, latency_device: str | None = None, latency_threads: int | None = 1,
                 latency_batch: int = 1, latency_repeats: int = 30, latency_table: str | None = None,
                 latency_clock: str = "wall"):
        if latency_threads is not None and latency_threads < 1:
            raise UserError(f"latency threads must be at least 1, got {latency_threads}")
        if latency_batch < 1 or latency_repeats < 1:
            raise UserError("latency batch and repeats must be at least 1")
        self.space = space
        self.latency_device = latency_device
        self.latency_threads = latency_threads
        self.latency_batch = int(latency_batch)
        self.latency_repeats = int(latency_repeats)
        if latency_clock not in ("wall", "cpu") or (latency_clock == "cpu" and latency_threads != 1):
            raise UserError(f"latency clock {latency_clock!r}: use wall, or cpu (thread CPU time) with one thread")
        self.latency_clock = latency_clock
        self.latency_table = None if latency_table is None else str(latency_table)
        self.table = LatencyTable.load(self.latency_table) if self.latency_table else None
        if self.table is not None:
            want = {"name": space.name, "config": space.config}
            have = self.table.meta.get("space")
            if json.dumps(have, sort_keys=True) != json.dumps(want, sort_keys=True, default=list):
                raise UserError(f"latency table {self.latency_table} was profiled for space {have} but the search "
                                f"uses {want}; profile it with `archsearch profile`")

    def config(self) -> dict[str, Any]:
        return {"latency_device": self.latency_device, "latency_threads": self.latency_threads,
                "latency_batch": self.latency_batch, "latency_repeats": self.latency_repeats,
                "latency_table": self.latency_table, "latency_clock": self.latency_clock}

    def check_shape(self, shape: InputShape) -> None:
        """The table must have been profiled at this input size (entries are keyed by shape)."""
        if self.table is not None and list(self.table.meta.get("input", [])) != list(shape.size):
            raise UserError(f"latency table {self.latency_table} was profiled at input {self.table.meta.get('input')}"
                            f", the data is {list(shape.size)}; profile it with `archsearch profile --input ...`")

    def static(self, model: nn.Module, shape: InputShape) -> dict[str, float]:
        """params, flops, macs (and predicted_latency_ms with a table) of a freshly built model."""
        out = model_cost(model, shape.size).metrics()
        if self.table is not None:
            self.check_shape(shape)
            out["predicted_latency_ms"] = self.table.predict_model(model)
        return out

    def latency(self, model: nn.Module, shape: InputShape) -> dict[str, float]:
        """latency_ms (median) measured on the latency device, and the load average when it was measured."""
        if self.latency_device is None:
            return {}
        stats = measure_latency(model, shape.size, device=self.latency_device, batch=self.latency_batch,
                                threads=self.latency_threads, repeats=self.latency_repeats,
                                clock=self.latency_clock)
        out = {"latency_ms": stats.median_ms}
        if stats.load1 is not None:
            out["latency_load1"] = stats.load1
        return out
