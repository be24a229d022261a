"""The supernet: a space built with every candidate of every choice, sharing weights across architectures.

:class:`SupernetChooser` answers a space function's questions (see :mod:`archsearch.space`) with modules that hold
*all* candidates: ``layer`` gives a :class:`MixedOp`, ``inputs`` a :class:`MixedInput`. Value choices (widths,
kernel sizes) cannot be mixed in general, so they are fixed during the search: to ``fixed_values[label]`` when
given, else to the largest numeric value (the supernet then contains every smaller model, as in once-for-all
supernets), else to the first value; the derived architecture reports them.

Mixed modules do not decide how to combine their candidates: a shared :class:`PathState` holds the strategy's
mode and per-step samples, so one supernet serves every one-shot strategy:

* ``softmax``  the softmax(α)-weighted sum of every candidate (DARTS, Liu et al. 2019), or of the candidates in
  ``state.path[label]`` when given (NASIB's eq. 2 on its two sampled candidates);
* ``gumbel``   a Gumbel-softmax sample, one-hot in the forward pass with the soft gradient (GDAS, Dong & Yang
  2019; ``hard=False`` keeps SNAS's soft sample, Xie et al. 2019): only the sampled candidate runs;
* ``binary``   ProxylessNAS's binarised paths (Cai et al. 2019): two sampled candidates, the active one run with
  autograd and the other without, gates ``g = onehot - p.detach() + p`` so that ∂L/∂α is the paper's
  ∂L/∂g·∂p/∂α over the two; memory is that of about two paths, not all N;
* ``path``     the candidates listed in ``state.path[label]`` summed (one for ENAS/SPOS/ProxylessNAS weight steps,
  two for NASIB's eq. 1).

Architecture parameters α (one tensor per decision label, shared by every cell using the label) live in
:class:`ArchParameters`, outside the model's weights, so that w and α have separate optimisers.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...ops import Zero
from ...registry import Registry
from ...space import Architecture, ArchitectureError, InputSelect, InputShape, SearchSpace

MODES = ("softmax", "gumbel", "binary", "path")


class ArchParameters:
    """α: one leaf tensor per decision label (DARTS initialises them to 1e-3·N(0, 1))."""

    def __init__(self, generator: torch.Generator):
        self.tensors: dict[str, torch.Tensor] = {}
        self._gen = generator

    def add(self, label: str, n: int) -> torch.Tensor:
        t = self.tensors.get(label)
        if t is None:
            t = (1e-3 * torch.randn(n, generator=self._gen)).requires_grad_(True)
            self.tensors[label] = t
        elif t.numel() != n:
            raise ValueError(f"decision {label!r} is asked with {n} and with {t.numel()} candidates")
        return t

    def __getitem__(self, label: str) -> torch.Tensor:
        return self.tensors[label]

    def __contains__(self, label: object) -> bool:
        return label in self.tensors

    @property
    def labels(self) -> list[str]:
        return list(self.tensors)

    def parameters(self) -> list[torch.Tensor]:
        return list(self.tensors.values())

    def to(self, device: torch.device, dtype: torch.dtype | None = None) -> None:
        for k, t in self.tensors.items():
            self.tensors[k] = t.detach().to(device, dtype).requires_grad_(True)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: t.detach().cpu().clone() for k, t in self.tensors.items()}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for k, t in self.tensors.items():
                t.copy_(state[k])


@dataclass
class PathState:
    """How mixed modules combine their candidates this step (see the module docstring)."""

    alphas: ArchParameters
    mode: str = "softmax"
    path: dict[str, tuple[int, ...]] = field(default_factory=dict)  # label -> candidate indices
    gates: dict[str, torch.Tensor] = field(default_factory=dict)  # label -> sampled gates (gumbel, binary)
    hard: bool = True  # gumbel: one-hot forward (GDAS) or soft sample (SNAS)

    def set(self, mode: str, path: Mapping[str, Sequence[int]] | None = None,
            gates: Mapping[str, torch.Tensor] | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown supernet mode {mode!r}; choose from: {', '.join(MODES)}")
        self.mode = mode
        self.path = {k: tuple(v) for k, v in (path or {}).items()}
        self.gates = dict(gates or {})


class MixedOp(nn.Module):
    """Every candidate op of one ``layer`` decision. ``candidates`` is a ModuleList, or one module with
    ``n_candidates`` and ``forward_candidate(k, x)`` when the candidates share weights (e.g. superkernels)."""

    def __init__(self, label: str, names: Sequence[str], candidates: nn.Module, state: PathState):
        super().__init__()
        self.label, self.names = label, tuple(names)
        self.candidates = candidates
        self._shared = hasattr(candidates, "forward_candidate")
        n = candidates.n_candidates if self._shared else len(candidates)
        if n != len(self.names):
            raise ValueError(f"decision {label!r}: {len(self.names)} names for {n} candidates")
        self.zero = [False] * n if self._shared else [isinstance(m, Zero) for m in candidates]
        self.__dict__["state"] = state  # a plain attribute: not a submodule, not saved with the weights

    def run(self, k: int, x: torch.Tensor) -> torch.Tensor:
        return self.candidates.forward_candidate(k, x) if self._shared else self.candidates[k](x)

    def forward(self, x: torch.Tensor) -> torch.Tensor | None:
        st, label = self.state, self.label
        if st.mode == "path":
            idx = st.path[label]
            return _sum(self.run(k, x) for k in idx) if idx else None
        if st.mode == "softmax":
            idx = st.path.get(label) or range(len(self.names))
            w = F.softmax(st.alphas[label][list(idx)], 0)
            # 'none' adds exactly zero: skipping it changes neither the output nor any gradient
            live = [(i, k) for i, k in enumerate(idx) if not self.zero[k]] or [(0, idx[0])]
            return _sum(w[i] * self.run(k, x) for i, k in live)
        if st.mode == "gumbel":
            h = st.gates[label]
            if not st.hard:
                return _sum(h[k] * self.run(k, x) for k in range(len(h)))
            k = int(h.argmax())
            return h[k] * self.run(k, x) + (h.sum() - h[k])  # GDAS: the others add 0 but pass α's gradient
        a, b = st.path[label]  # binary: active, inactive
        g = st.gates[label]
        out = g[0] * self.run(a, x)
        with torch.no_grad():
            other = self.run(b, x)
        return out + g[1] * other

    def extra_repr(self) -> str:
        return f"{self.label}: {', '.join(self.names)}"


class MixedInput(InputSelect):
    """Every candidate input of one ``inputs`` decision: the caller passes all candidate tensors.

    One chosen input (``n_chosen=1``) is relaxed like an op choice. Several (``n_chosen=k``, or any subset) get
    independent gates: σ(α_i) in ``softmax`` mode, sampled 0/1 gates with a straight-through gradient in
    ``gumbel``/``binary`` modes, the listed subset in ``path`` mode; the derived architecture keeps the top k
    (or every input with α_i > 0). Concatenated or listed inputs are scaled by their gates so shapes never change.
    """

    def __init__(self, label: str, n_candidates: int, n_chosen: int | None, reduction: str, state: PathState):
        super().__init__(n_candidates, list(range(n_candidates)), reduction)
        self.label, self.n_chosen = label, n_chosen
        self.__dict__["state"] = state

    def forward(self, tensors: Sequence[torch.Tensor]):
        tensors, st = list(tensors), self.state
        n = len(tensors)
        if st.mode == "path":
            chosen = set(st.path[self.label])
            w: Any = [1.0 if i in chosen else 0.0 for i in range(n)]
        elif st.mode == "softmax":
            a, idx = st.alphas[self.label], st.path.get(self.label)
            if idx is None:
                w = F.softmax(a, 0) if self.n_chosen == 1 else torch.sigmoid(a)
            else:  # only the listed candidates (NASIB's eq. 2)
                p = F.softmax(a[list(idx)], 0) if self.n_chosen == 1 else torch.sigmoid(a[list(idx)])
                w = [0.0] * n
                for i, k in enumerate(idx):
                    w[k] = p[i]
        elif st.mode == "binary" and self.n_chosen == 1:
            (a, b), g = st.path[self.label], st.gates[self.label]
            w = [0.0] * n
            w[a] = g[0]
            tensors[b] = tensors[b].detach()
            w[b] = g[1]
        else:
            w = st.gates[self.label]
        if self.reduction in ("concat", "list"):
            scaled = [wi * t for wi, t in zip(w, tensors)]
            return scaled if self.reduction == "list" else torch.cat(scaled, dim=1)
        live = [(wi, t) for wi, t in zip(w, tensors) if not (isinstance(wi, float) and wi == 0.0)]
        if not live:
            return None
        out = _sum(wi * t for wi, t in live)
        if self.reduction == "mean" and self.n_chosen != 1:
            out = out / max(float(sum(float(wi) for wi, _ in live)), 1e-6)
        return out


def sigmoid_gates(a: torch.Tensor, gen: torch.Generator, tau: float = 1.0, hard: bool = True) -> torch.Tensor:
    """Independent 0/1 gates for a multi-input decision, each on with probability σ(α): a binary-concrete sample
    (Maddison et al. 2017) at temperature ``tau``, hard in the forward pass with the soft gradient."""
    u = torch.rand(a.shape, generator=gen).clamp(1e-6, 1 - 1e-6).to(a.device)
    soft = torch.sigmoid((a + u.log() - (1 - u).log()) / tau)
    return (soft > 0.5).to(soft.dtype) - soft.detach() + soft if hard else soft


def _sum(items) -> torch.Tensor:
    it = iter(items)
    out = next(it)
    for t in it:
        out = out + t
    return out


class SupernetChooser:
    """The chooser that builds a supernet: mixed modules for op and input choices, fixed values (see module doc)."""

    def __init__(self, state: PathState, space: SearchSpace, fixed_values: Mapping[str, Any] | None = None):
        self.state, self.space = state, space
        self.fixed_values = dict(fixed_values or {})
        self.values: dict[str, Any] = {}

    def layer(self, label, candidates, active=None):
        if active is False:
            return None
        names = tuple(candidates)
        self.state.alphas.add(label, len(names))
        shared = getattr(candidates, "build_shared", None)  # candidates that share weights build themselves
        mods = shared() if shared is not None else nn.ModuleList(candidates[n]() for n in names)
        return MixedOp(label, names, mods, self.state)

    def inputs(self, label, n_candidates, n_chosen=1, reduction="sum", active=None):
        if active is False:
            return None
        self.state.alphas.add(label, n_candidates)
        return MixedInput(label, n_candidates, n_chosen, reduction, self.state)

    def value(self, label, values, active=None):
        v = self.values.get(label)
        if v is None:
            v = self.values[label] = fixed_value(label, values, self.fixed_values)
        return v


def fixed_value(label: str, values: Sequence[Any], fixed: Mapping[str, Any]) -> Any:
    """The value a supernet uses for a value choice: ``fixed[label]``, else the largest number, else the first."""
    values = list(values)
    if label in fixed:
        if fixed[label] not in values:
            raise ArchitectureError(f"fixed value {label}={fixed[label]!r} is not one of {values}")
        return fixed[label]
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return max(values)
    return values[0]


class Supernet:
    """A space's supernet: ``model`` (the weights w), ``alphas`` (α) and the shared ``state``.

    ``derive()`` reads the discrete architecture off α; ``path_of(arch)`` gives the path (label -> candidate
    indices) that runs ``arch`` with the shared weights; ``sample(rng)`` draws a uniform architecture of the space
    (with the supernet's fixed values), as SPOS does. Spaces with their own supernet (``cell``) subclass this.
    """

    def __init__(self, space: SearchSpace, model: nn.Module, state: PathState, values: Mapping[str, Any]):
        self.space, self.model, self.state = space, model, state
        self.alphas = state.alphas
        self.values = dict(values)

    # --- facts ---------------------------------------------------------------------------------------------------
    def options(self, label: str) -> tuple:
        """The candidates of a supernet decision (op names, or input indices)."""
        return self.space.decision(label).options

    def n_chosen(self, label: str) -> int | None:
        d = self.space.decision(label)
        return d.n_chosen if d.kind == "inputs" else 1

    def weights(self) -> list[nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def probabilities(self) -> dict[str, list[float]]:
        """softmax(α) per decision (σ(α) for multi-input decisions): what the 'architecture weights' plot shows."""
        out = {}
        for label, a in self.alphas.tensors.items():
            p = F.softmax(a.detach(), 0) if self.n_chosen(label) == 1 else torch.sigmoid(a.detach())
            out[label] = [round(float(v), 6) for v in p]
        return out

    # --- architectures -------------------------------------------------------------------------------------------
    def derive(self, scores: Mapping[str, torch.Tensor] | None = None) -> Architecture:
        """The discrete architecture: argmax α per op decision, the top-k inputs (or those with α > 0), the fixed
        values; decisions the supernet never asked (inactive) take their first option."""
        scores = scores or {k: t.detach().cpu() for k, t in self.alphas.tensors.items()}
        choices: dict[str, Any] = {}
        for d in self.space.decisions:
            a = scores.get(d.label)
            if d.kind == "value":
                choices[d.label] = self.values.get(d.label, d.options[0])
            elif a is None:
                choices[d.label] = d.choices[0]
            elif d.kind == "layer":
                choices[d.label] = d.options[int(a.argmax())]
            elif d.n_chosen is None:
                choices[d.label] = tuple(int(i) for i in torch.nonzero(a > 0).flatten())
            else:
                top = torch.argsort(a, descending=True, stable=True)[: d.n_chosen]
                choices[d.label] = tuple(sorted(int(i) for i in top))
        return self.space.validate(self.space.canonical(Architecture(choices)))

    def with_values(self, arch: Architecture) -> Architecture:
        """``arch`` with its value choices replaced by the supernet's (the only ones its weights were trained for)."""
        changes = {k: v for k, v in self.values.items() if arch.get(k) != v}
        return self.space.canonical(arch.replace(**changes)) if changes else arch

    def sample(self, rng: np.random.Generator) -> Architecture:
        return self.with_values(self.space.sample(rng))

    def path_of(self, arch: Architecture) -> dict[str, tuple[int, ...]]:
        path = {}
        for label in self.alphas.labels:
            d = self.space.decision(label)
            v = arch[label]
            path[label] = tuple(v) if d.kind == "inputs" else (d.options.index(v),)
        return path


# --------------------------------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------------------------------
def search_space_of(space: SearchSpace, overrides: Mapping[str, Any] | None) -> SearchSpace:
    """The space the supernet is built from: ``space`` with some settings changed (DARTS searches a smaller
    network than it trains, e.g. fewer channels). The decisions must stay the same."""
    if not overrides:
        return space
    sp = SearchSpace(space.fn, name=space.name, config={**space.config, **overrides}, formatter=space.formatter,
                     parser=space.parser)
    if [(d.label, d.kind, d.options, d.n_chosen) for d in sp.decisions] != \
            [(d.label, d.kind, d.options, d.n_chosen) for d in space.decisions]:
        raise ValueError(f"search_config {dict(overrides)} changes the decisions of space {space.name!r}")
    return sp


@dataclass(frozen=True)
class SupernetEntry:
    """A space's own supernet: used when a space built from ``space_fn`` is searched one-shot.
    ``build(space, search_space, shape, state) -> Supernet``; search_space carries any search-only settings."""

    space_fn: Callable[..., nn.Module]
    build: Callable[[SearchSpace, SearchSpace, InputShape, PathState], Supernet]


SUPERNETS: Registry[SupernetEntry] = Registry("supernet")


def build_supernet(space: SearchSpace, shape: InputShape, seed: int = 0,
                   fixed_values: Mapping[str, Any] | None = None,
                   search_config: Mapping[str, Any] | None = None) -> Supernet:
    """The supernet of ``space`` for data of ``shape``: the space's own supernet when it registers one in
    :data:`SUPERNETS` (the DARTS all-edges network for ``cell``), else the generic one built by running the space
    function with a :class:`SupernetChooser`. Weights and α are initialised from ``seed``."""
    sp = search_space_of(space, search_config)
    gen = torch.Generator().manual_seed(int(seed))
    state = PathState(ArchParameters(gen))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        entry = SUPERNETS.get(space.name) if space.name in SUPERNETS else None
        if entry is not None and entry.space_fn is space.fn:
            return entry.build(space, sp, shape, state)
        chooser = SupernetChooser(state, sp, fixed_values)
        net = sp.build_with(chooser, shape)
    if not isinstance(net, nn.Module):
        raise TypeError(f"space {space.name!r} returned {type(net).__name__}, not an nn.Module")
    if not state.alphas.labels:
        raise ValueError(f"space {space.name!r} has no op or input choice to search one-shot (only values)")
    values = {d.label: chooser.values.get(d.label, fixed_value(d.label, d.options, chooser.fixed_values))
              for d in space.decisions if d.kind == "value"}
    return Supernet(space, net, state, values)
