"""The expected-cost (latency) loss term of ProxylessNAS (Cai et al., ICLR 2019, Sec. 3.3): E[cost] is
differentiable in α because it is linear in the candidates' probabilities,

    loss_α = CE(val) + λ · Σ_decisions Σ_candidates p(candidate) · cost(decision, candidate),   p = softmax(α).

The cost of a candidate comes from a :class:`CostTable`: anything that maps (decision label, candidate name) to a
cost, e.g. milliseconds measured on the target device by the hardware module. Accepted forms:

* a callable ``table(label, candidate) -> float | None``;
* a mapping ``{"label/candidate": ms}`` or ``{(label, candidate): ms}`` (one cost per decision and candidate), or
  ``{"candidate": ms}`` (one cost per op wherever it appears), or ``{"label": {"candidate": ms}}``;
* the path of a JSON file holding such a mapping, or of a per-op latency table made by ``archsearch profile``
  (:class:`archsearch.hardware.latency_table.LatencyTable`, read with its ``layer_costs`` for the supernet's space,
  input shape and fixed values).

A label shared by several cells (one decision) is looked up once: give its cost for the whole network. Missing
entries cost 0. For the ``cell`` supernet the labels are its edges (``normal_n0_e1``), the candidates op names; for
input choices the candidates are the input indices as strings.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable, Protocol, Union

import torch
import torch.nn.functional as F

from ...errors import UserError


class CostTable(Protocol):
    def __call__(self, label: str, candidate: str) -> float | None:
        """The cost (e.g. latency in ms) of ``candidate`` for decision ``label``, or None if unknown (= 0)."""


CostSpec = Union[CostTable, Mapping[Any, Any], str, Path, None]


def as_cost_table(spec: CostSpec, supernet=None, shape=None) -> Callable[[str, str], float | None]:
    """Normalise any accepted form (see the module docstring) to a callable."""
    if spec is None:
        return lambda label, candidate: None
    if callable(spec):
        return spec
    if isinstance(spec, (str, Path)):
        path = Path(spec).expanduser()
        try:
            spec = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise UserError(f"cannot read cost table {path}: {e}") from None
        if not isinstance(spec, Mapping):
            raise UserError(f"cost table {path}: a cost table file must hold a JSON object")
        if str(spec.get("format", "")).startswith("archsearch-latency-table") and supernet is not None:
            from ...hardware.latency_table import LatencyTable  # a measured per-op table (the hardware module)
            spec = LatencyTable.load(path).layer_costs(supernet.space, shape, supernet.values)
    table = dict(spec)

    def lookup(label: str, candidate: str) -> float | None:
        for key in ((label, candidate), f"{label}/{candidate}"):
            if key in table:
                return float(table[key])
        nested = table.get(label)
        if isinstance(nested, Mapping) and candidate in nested:
            return float(nested[candidate])
        v = table.get(candidate)
        return float(v) if isinstance(v, (int, float)) else None

    return lookup


def load_cost_table(spec: CostSpec, supernet, shape=None) -> dict[str, torch.Tensor]:
    """Cost vectors per decision of ``supernet`` (decisions whose candidates all cost 0 are left out)."""
    table = as_cost_table(spec, supernet, shape)
    out = {}
    for label, a in supernet.alphas.tensors.items():
        costs = [table(label, str(name)) or 0.0 for name in supernet.options(label)]
        if any(costs):
            out[label] = torch.tensor(costs, dtype=a.dtype, device=a.device)
    if spec is not None and not out:
        raise UserError("the cost table gives no cost to any candidate of this supernet (check its labels)")
    return out


def expected_cost(supernet, cost_vectors: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Σ_decisions Σ_candidates softmax(α)·cost: differentiable in α."""
    return sum((F.softmax(supernet.alphas[label], 0) * c).sum() for label, c in cost_vectors.items())
