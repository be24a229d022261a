"""Choice points, architectures and search spaces.

A search space is a plain function written define-by-run (as Optuna does for hyperparameters): it receives a
*chooser* and the input shape, asks the chooser for every decision and returns an ``nn.Module``::

    def tiny(c: Chooser, shape: InputShape) -> nn.Module:
        width = c.value("width", [16, 32])
        conv = c.layer("op", {"conv3": lambda: nn.Conv2d(shape.channels, width, 3, padding=1),
                              "conv5": lambda: nn.Conv2d(shape.channels, width, 5, padding=2)})
        return nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                             nn.Linear(width, shape.num_classes))

The same function serves every purpose, depending on the chooser it is given:

* a recording chooser discovers the decisions (labels and options) once;
* a fixed chooser replays an :class:`Architecture` and builds only the chosen candidates;
* a supernet chooser (one-shot strategies) returns modules that hold every candidate.

A label used several times is one shared decision (every normal cell of a DARTS network shares its genotype).
Decisions must not depend on the input shape. A decision that only matters for some architectures (a kernel
size when the op is a pooling layer, an op on an edge that is not selected) is still asked, with
``active=False`` when it does not matter; the space then canonicalises such decisions so that two
architectures building the same model compare equal.
"""
from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping, Protocol, Sequence

import numpy as np
import torch
from torch import nn

__all__ = [
    "Architecture", "ArchitectureError", "Chooser", "Decision", "InputShape", "InputSelect", "SearchSpace",
    "FixedChooser", "space_from_function",
]

JsonScalar = str | int | float | bool
Choice = JsonScalar | tuple[int, ...]


class ArchitectureError(ValueError):
    """An architecture that does not belong to a space (unknown label, missing decision, value out of range)."""


@dataclass(frozen=True)
class InputShape:
    """What a space needs to know about the data to build a model."""

    channels: int
    height: int
    width: int
    num_classes: int

    @property
    def size(self) -> tuple[int, int, int]:
        return (self.channels, self.height, self.width)


DEFAULT_SHAPE = InputShape(3, 32, 32, 10)


# --------------------------------------------------------------------------------------------------------------
# Architecture
# --------------------------------------------------------------------------------------------------------------
class Architecture(Mapping[str, Choice]):
    """An immutable, hashable mapping label -> choice. A value, not a model: ``space.build(arch)`` makes the model.

    Choices are strings (op names), JSON scalars (values) or sorted tuples of ints (chosen inputs).
    """

    __slots__ = ("_items", "_dict", "_hash")

    def __init__(self, choices: Mapping[str, Any] | Iterable[tuple[str, Any]]):
        items = choices.items() if isinstance(choices, Mapping) else choices
        d = {str(k): _freeze(v) for k, v in items}
        self._dict = d
        self._items = tuple(sorted(d.items(), key=lambda kv: kv[0]))
        self._hash = hash(self._items)

    def __getitem__(self, label: str) -> Choice:
        return self._dict[label]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict)

    def __len__(self) -> int:
        return len(self._dict)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Architecture):
            return self._hash == other._hash and self._items == other._items
        return NotImplemented

    def replace(self, **changes: Any) -> "Architecture":
        """A copy with some decisions changed (labels as keyword arguments)."""
        d = dict(self._dict)
        d.update(changes)
        return Architecture(d)

    def with_choice(self, label: str, value: Any) -> "Architecture":
        d = dict(self._dict)
        d[label] = value
        return Architecture(d)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists), keys sorted: the stable form."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self._items}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | Mapping[str, Any]) -> "Architecture":
        data = json.loads(text) if isinstance(text, str) else text
        if not isinstance(data, Mapping):
            raise ArchitectureError("an architecture JSON must be an object mapping decision labels to choices")
        return cls(data)

    def __str__(self) -> str:
        parts = []
        for k, v in self._dict.items():
            if isinstance(v, tuple):
                v = "+".join(map(str, v)) if v else "-"
            parts.append(f"{k}={v}")
        return " ".join(parts)

    def __repr__(self) -> str:
        return f"Architecture({self.to_json()})"

    def __reduce__(self):
        return (Architecture, (self._dict,))


def _freeze(v: Any) -> Choice:
    if isinstance(v, (list, tuple)):
        return tuple(sorted(int(x) for x in v))
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (str, int, float, bool)):
        return v
    raise ArchitectureError(f"unsupported choice value {v!r} (use strings, numbers or lists of input indices)")


# --------------------------------------------------------------------------------------------------------------
# Decisions
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Decision:
    """One choice point. kind: 'layer' (one op among named candidates), 'value' (one of several values) or
    'inputs' (which earlier tensors feed a node: ``n_chosen`` of ``options``; n_chosen None = any subset)."""

    label: str
    kind: str
    options: tuple
    n_chosen: int | None = 1

    @property
    def choices(self) -> list[Choice]:
        """Every legal choice for this decision, in a fixed order."""
        if self.kind != "inputs":
            return list(self.options)
        idx = list(self.options)
        if self.n_chosen is None:
            return [tuple(c) for r in range(len(idx) + 1) for c in itertools.combinations(idx, r)]
        return [tuple(c) for c in itertools.combinations(idx, self.n_chosen)]

    @property
    def size(self) -> int:
        if self.kind != "inputs":
            return len(self.options)
        if self.n_chosen is None:
            return 2 ** len(self.options)
        return math.comb(len(self.options), self.n_chosen)

    @property
    def encoding_width(self) -> int:
        return len(self.options)

    def contains(self, v: Choice) -> bool:
        if self.kind != "inputs":
            return not isinstance(v, tuple) and v in self.options
        if not isinstance(v, tuple) or len(set(v)) != len(v) or any(i not in self.options for i in v):
            return False
        return self.n_chosen is None or len(v) == self.n_chosen

    def sample(self, rng: np.random.Generator) -> Choice:
        if self.kind != "inputs":
            return self.options[int(rng.integers(len(self.options)))]
        n = len(self.options)
        if self.n_chosen is None:
            mask = rng.random(n) < 0.5
            return tuple(int(o) for o, m in zip(self.options, mask) if m)
        return tuple(sorted(int(x) for x in rng.choice(self.options, size=self.n_chosen, replace=False)))

    def alternatives(self, v: Choice) -> list[Choice]:
        """Every choice one small step from ``v``: another option, one input swapped, or one input toggled."""
        if self.kind != "inputs":
            return [o for o in self.options if o != v]
        chosen = set(v)
        if self.n_chosen is None:
            return [tuple(sorted(chosen ^ {o})) for o in self.options]
        out = []
        for a in sorted(chosen):
            for b in self.options:
                if b not in chosen:
                    out.append(tuple(sorted((chosen - {a}) | {b})))
        return out

    def mutate(self, v: Choice, rng: np.random.Generator) -> Choice:
        alts = self.alternatives(v)
        return alts[int(rng.integers(len(alts)))]

    def encode(self, v: Choice) -> list[float]:
        """One-hot (layer/value) or multi-hot (inputs)."""
        if self.kind == "inputs":
            return [1.0 if o in v else 0.0 for o in self.options]
        return [1.0 if o == v else 0.0 for o in self.options]

    def index(self, v: Choice) -> int:
        if self.kind == "inputs":
            return self.choices.index(v)
        return self.options.index(v)


# --------------------------------------------------------------------------------------------------------------
# Choosers
# --------------------------------------------------------------------------------------------------------------
Factory = Callable[[], nn.Module]


class InputSelect(nn.Module):
    """Combines the tensors chosen for a node. ``active_indices`` says which candidates' tensors the caller must
    pass (in that order): the chosen ones for a fixed model, all of them for a supernet."""

    def __init__(self, n_candidates: int, chosen: Sequence[int], reduction: str = "sum"):
        super().__init__()
        if reduction not in ("sum", "mean", "concat", "list"):
            raise ValueError(f"unknown reduction {reduction!r}")
        self.n_candidates = n_candidates
        self.active_indices = list(chosen)
        self.reduction = reduction

    def forward(self, tensors: Sequence[torch.Tensor]):
        tensors = list(tensors)
        if self.reduction == "list":
            return tensors
        if not tensors:
            return None
        if self.reduction == "concat":
            return torch.cat(tensors, dim=1)
        out = tensors[0]
        for t in tensors[1:]:
            out = out + t
        return out / len(tensors) if self.reduction == "mean" else out

    def extra_repr(self) -> str:
        return f"chosen={self.active_indices}, of={self.n_candidates}, reduction={self.reduction}"


class Chooser(Protocol):
    """What a space function talks to. Every implementation answers the same three questions."""

    def layer(self, label: str, candidates: Mapping[str, Factory], active: bool | None = None) -> nn.Module | None:
        """One op among named candidate factories (called lazily, so unchosen ops are never built)."""

    def inputs(self, label: str, n_candidates: int, n_chosen: int | None = 1, reduction: str = "sum",
               active: bool | None = None) -> InputSelect | None:
        """Which of ``n_candidates`` earlier tensors feed a node: exactly ``n_chosen``, or any subset if None."""

    def value(self, label: str, values: Sequence[JsonScalar], active: bool | None = None) -> JsonScalar:
        """One of several values (width, kernel size, depth, expansion ratio ...)."""


class _Recorder:
    """Discovers decisions by running the space function once. Builds no candidate op."""

    def __init__(self):
        self.decisions: dict[str, Decision] = {}
        self.conditional = False

    def _add(self, d: Decision, active: bool | None) -> None:
        if active is not None:
            self.conditional = True
        old = self.decisions.get(d.label)
        if old is None:
            if not d.options:
                raise ValueError(f"decision {d.label!r} has no options")
            self.decisions[d.label] = d
        elif old != d:
            raise ValueError(f"label {d.label!r} is used for two different decisions: {old} and {d}")

    def layer(self, label, candidates, active=None):
        names = tuple(candidates)
        self._add(Decision(label, "layer", names), active)
        return nn.Identity()

    def inputs(self, label, n_candidates, n_chosen=1, reduction="sum", active=None):
        if n_chosen is not None and not 0 < n_chosen <= n_candidates:
            raise ValueError(f"decision {label!r}: cannot choose {n_chosen} of {n_candidates} inputs")
        self._add(Decision(label, "inputs", tuple(range(n_candidates)), n_chosen), active)
        first = list(range(n_chosen if n_chosen is not None else n_candidates))
        return InputSelect(n_candidates, first, reduction)

    def value(self, label, values, active=None):
        values = tuple(values)
        for v in values:
            _freeze(v)
        self._add(Decision(label, "value", values), active)
        return values[0]


class FixedChooser:
    """Replays an architecture. With ``dry=True`` builds no candidate op and records which decisions were active."""

    def __init__(self, arch: Architecture, dry: bool = False):
        self.arch = arch
        self.dry = dry
        self.seen: set[str] = set()
        self.active: set[str] = set()

    def _get(self, label: str, active: bool | None) -> Choice:
        if label not in self.arch:
            raise ArchitectureError(f"the architecture has no choice for decision {label!r}")
        self.seen.add(label)
        if active is None or active:
            self.active.add(label)
        return self.arch[label]

    def layer(self, label, candidates, active=None):
        name = self._get(label, active)
        if name not in candidates:
            raise ArchitectureError(f"{label}={name!r} is not one of {sorted(candidates)}")
        if active is False:
            return None
        return nn.Identity() if self.dry else candidates[name]()

    def inputs(self, label, n_candidates, n_chosen=1, reduction="sum", active=None):
        chosen = self._get(label, active)
        if active is False:
            return None
        return InputSelect(n_candidates, chosen, reduction)

    def value(self, label, values, active=None):
        return self._get(label, active)


# --------------------------------------------------------------------------------------------------------------
# SearchSpace
# --------------------------------------------------------------------------------------------------------------
SpaceFunction = Callable[..., nn.Module]


@dataclass
class SearchSpace:
    """A space function plus its configuration, with everything strategies need: sample, mutate, neighbours,
    encode, size, enumerate, validate, build."""

    fn: SpaceFunction
    name: str = "custom"
    config: dict[str, Any] = field(default_factory=dict)
    formatter: Callable[["SearchSpace", Architecture], str] | None = None
    parser: Callable[["SearchSpace", str], Architecture] | None = None
    reference_fn: Callable[["SearchSpace"], Architecture] | None = None
    #: ``rebuild(name, config) -> SearchSpace`` for a registered space (``get_space`` sets it), so a pickled
    #: space comes back with its registered text form and reference
    rebuild: Callable[[str, dict[str, Any]], "SearchSpace"] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        rec = _Recorder()
        self.fn(rec, DEFAULT_SHAPE, **self.config)
        if not rec.decisions:
            raise ValueError(f"space {self.name!r} asks for no decision")
        self.decisions: list[Decision] = list(rec.decisions.values())
        self._by_label = {d.label: d for d in self.decisions}
        self.conditional = rec.conditional
        self._active_cache: dict[Architecture, frozenset[str]] = {}
        self.encoding_width = sum(d.encoding_width for d in self.decisions)

    def __reduce__(self):
        """Pickle as the recipe (function, name, config), not the caches: cheap to ship to worker processes."""
        if self.rebuild is not None:
            return (self.rebuild, (self.name, self.config))
        return (SearchSpace, (self.fn, self.name, self.config))

    # --- basic facts -------------------------------------------------------------------------------------------
    @property
    def labels(self) -> list[str]:
        return [d.label for d in self.decisions]

    def decision(self, label: str) -> Decision:
        return self._by_label[label]

    @property
    def size(self) -> int:
        """Number of distinct decision vectors (exact; architectures that differ only in inactive decisions
        are counted once per vector, before canonicalisation)."""
        return math.prod(d.size for d in self.decisions)

    def __len__(self) -> int:
        return self.size

    # --- validation and canonical form -------------------------------------------------------------------------
    def validate(self, arch: Architecture | Mapping[str, Any]) -> Architecture:
        """Return ``arch`` as an Architecture of this space, or raise ArchitectureError saying what is wrong."""
        if not isinstance(arch, Architecture):
            arch = Architecture(arch)
        missing = [lbl for lbl in self._by_label if lbl not in arch]
        extra = [lbl for lbl in arch if lbl not in self._by_label]
        if extra:
            raise ArchitectureError(f"not in space {self.name!r}: unknown decision {extra[0]!r}")
        if missing:
            raise ArchitectureError(f"not in space {self.name!r}: no choice for decision {missing[0]!r}")
        for d in self.decisions:
            if not d.contains(arch[d.label]):
                raise ArchitectureError(
                    f"not in space {self.name!r}: {d.label}={arch[d.label]!r} is not one of {d.choices[:12]}")
        return arch

    def contains(self, arch: Architecture | Mapping[str, Any]) -> bool:
        try:
            self.validate(arch)
            return True
        except ArchitectureError:
            return False

    def __contains__(self, arch: object) -> bool:
        return isinstance(arch, Mapping) and self.contains(arch)

    def active(self, arch: Architecture) -> frozenset[str]:
        """Labels of the decisions that matter for ``arch`` (all of them in spaces without conditionals)."""
        if not self.conditional:
            return frozenset(self._by_label)
        got = self._active_cache.get(arch)
        if got is None:
            ch = FixedChooser(arch, dry=True)
            self.fn(ch, DEFAULT_SHAPE, **self.config)
            got = frozenset(ch.active)
            if len(self._active_cache) > 20000:
                self._active_cache.clear()
            self._active_cache[arch] = got
        return got

    def canonical(self, arch: Architecture) -> Architecture:
        """Inactive decisions set to their first option, so equal models are equal architectures."""
        if not self.conditional:
            return arch
        act = self.active(arch)
        changes = {d.label: d.choices[0] for d in self.decisions if d.label not in act and arch[d.label] != d.choices[0]}
        return Architecture({**arch, **changes}) if changes else arch

    def equivalent(self, arch: Architecture) -> Architecture:
        """One representative of the architectures that build the same function as ``arch`` (beyond inactive
        decisions: a space function may define ``fn.equivalent``, as nb201 does for edges into unused nodes)."""
        fn = getattr(self.fn, "equivalent", None)
        return fn(self.canonical(arch)) if fn is not None else self.canonical(arch)

    # --- what strategies use -----------------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> Architecture:
        arch = Architecture({d.label: d.sample(rng) for d in self.decisions})
        return self.canonical(arch)

    def mutable(self, arch: Architecture) -> list[Decision]:
        act = self.active(arch)
        return [d for d in self.decisions if d.label in act and d.size > 1]

    def mutate(self, arch: Architecture, rng: np.random.Generator) -> Architecture:
        """Change one active decision to another legal choice (a one-step neighbour)."""
        ds = self.mutable(arch)
        if not ds:
            return arch
        d = ds[int(rng.integers(len(ds)))]
        return self.canonical(arch.with_choice(d.label, d.mutate(arch[d.label], rng)))

    def neighbours(self, arch: Architecture) -> list[Architecture]:
        """Every architecture one decision away (deduplicated, canonical, in a fixed order)."""
        out, seen = [], {arch}
        for d in self.mutable(arch):
            for v in d.alternatives(arch[d.label]):
                n = self.canonical(arch.with_choice(d.label, v))
                if n not in seen:
                    seen.add(n)
                    out.append(n)
        return out

    def encode(self, arch: Architecture) -> np.ndarray:
        """Fixed-length numeric vector: one-hot per op/value decision, multi-hot per input decision."""
        vec: list[float] = []
        for d in self.decisions:
            vec.extend(d.encode(arch[d.label]))
        return np.asarray(vec, dtype=np.float32)

    def indices(self, arch: Architecture) -> tuple[int, ...]:
        """Position of each choice among its decision's choices (a compact integer encoding)."""
        return tuple(d.index(arch[d.label]) for d in self.decisions)

    def from_indices(self, idx: Sequence[int]) -> Architecture:
        return Architecture({d.label: d.choices[int(i)] for d, i in zip(self.decisions, idx)})

    def enumerate(self, limit: int | None = 1_000_000) -> Iterator[Architecture]:
        """Every architecture of a finite space, in a fixed order (canonical, without repeats)."""
        if limit is not None and self.size > limit:
            raise ValueError(f"space {self.name!r} has {self.size:,} architectures, more than {limit:,} to enumerate")
        seen: set[Architecture] = set()
        for combo in itertools.product(*(d.choices for d in self.decisions)):
            arch = self.canonical(Architecture(zip(self.labels, combo)))
            if arch not in seen:
                seen.add(arch)
                yield arch

    # --- models ------------------------------------------------------------------------------------------------
    def build(self, arch: Architecture | Mapping[str, Any], shape: InputShape = DEFAULT_SHAPE) -> nn.Module:
        """A plain ``nn.Module`` holding only the chosen ops."""
        arch = self.validate(arch)
        ch = FixedChooser(arch)
        model = self.fn(ch, shape, **self.config)
        if not isinstance(model, nn.Module):
            raise TypeError(f"space {self.name!r} returned {type(model).__name__}, not an nn.Module")
        return model

    def build_with(self, chooser: Any, shape: InputShape = DEFAULT_SHAPE) -> nn.Module:
        """Run the space function with any chooser (a supernet chooser, for instance)."""
        return self.fn(chooser, shape, **self.config)

    # --- text forms --------------------------------------------------------------------------------------------
    def format(self, arch: Architecture) -> str:
        """The short readable form (a space may define its own, e.g. the NAS-Bench-201 cell string)."""
        if self.formatter:
            return self.formatter(self, arch)
        return str(Architecture((lbl, arch[lbl]) for lbl in self.labels if lbl in arch))

    def reference(self) -> Architecture | None:
        """The hand-designed architecture a person would write in this space (None when the space names none):
        every search trains it with the same evaluator, so its result says what the search added."""
        if self.reference_fn is None:
            return None
        return self.validate(self.reference_fn(self))

    def parse(self, text: str) -> Architecture:
        """Read an architecture from JSON, or from the space's own text form."""
        text = text.strip()
        if text.startswith("{"):
            try:
                return self.validate(Architecture.from_json(text))
            except json.JSONDecodeError as e:
                raise ArchitectureError(f"not valid JSON: {e.msg} at position {e.pos}") from None
        if self.parser is None:
            raise ArchitectureError(f"space {self.name!r} reads architectures as JSON objects only")
        return self.validate(self.parser(self, text))

    def describe(self) -> str:
        lines = [f"space {self.name!r}: {len(self.decisions)} decisions, {self.size:,} architectures"]
        for d in self.decisions:
            opts = ", ".join(map(str, d.options))
            extra = f" choose {d.n_chosen if d.n_chosen is not None else 'any'}" if d.kind == "inputs" else ""
            lines.append(f"  {d.label} [{d.kind}{extra}]: {opts}")
        return "\n".join(lines)


def space_from_function(fn: SpaceFunction, name: str | None = None, **config: Any) -> SearchSpace:
    """Wrap a user's space function (``fn(chooser, shape, **config) -> nn.Module``) as a SearchSpace."""
    return SearchSpace(fn, name=name or getattr(fn, "__name__", "custom"), config=dict(config))
