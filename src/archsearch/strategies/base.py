"""The black-box strategy contract: ``ask() -> Architecture`` and ``tell(observation)``.

Several asks may be in flight at once (parallel workers): a strategy must answer ``ask`` again before the
earlier asks are told, and accept tells in any order. Strategies are deterministic given their seed: all
randomness comes from ``self.rng`` (numpy) or a torch.Generator seeded from it.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..registry import Registry
from ..result import Observation
from ..space import Architecture, SearchSpace


class Strategy:
    """Base class with the shared bookkeeping: the space, the seeded rng, pending asks and history."""

    name = "strategy"
    #: The kinds of objective the strategy searches by (declared, read by the run configuration, the errors and
    #: ``archsearch strategies``): "single" (one value), "vector" (a Pareto objective's values), "constrained"
    #: (told the constraints as its ``constraints`` option), "reference_point" (a hypervolume reference point,
    #: its ``ref_point`` option).
    objectives: frozenset[str] = frozenset({"single"})
    #: Whether ``ask`` depends on what the strategy was told. A strategy that reads no result (random, grid) asks
    #: the same architectures in any order of results, so parallel workers need not tell it in ask order.
    reads_results: bool = True

    def __init__(self, space: SearchSpace, seed: int = 0, **options: Any):
        if options:
            raise TypeError(f"strategy {self.name!r} has no option(s) {', '.join(sorted(options))}")
        self.space = space
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.pending: dict[Architecture, int] = {}  # asked, not yet told (a count: an arch may be asked twice)
        self.history: list[Observation] = []

    # ---- the contract ----------------------------------------------------------------------------------------
    def ask(self) -> Architecture:
        arch = self._ask()
        self.pending[arch] = self.pending.get(arch, 0) + 1
        return arch

    def tell(self, obs: Observation) -> None:
        n = self.pending.get(obs.arch, 0)
        if n <= 1:
            self.pending.pop(obs.arch, None)
        else:
            self.pending[obs.arch] = n - 1
        self.history.append(obs)
        self._tell(obs)

    # ---- what subclasses write -------------------------------------------------------------------------------
    def _ask(self) -> Architecture:
        raise NotImplementedError

    def _tell(self, obs: Observation) -> None:
        pass

    # ---- helpers ---------------------------------------------------------------------------------------------
    @property
    def n_pending(self) -> int:
        return sum(self.pending.values())

    def best(self) -> Observation | None:
        done = [o for o in self.history if not o.failed and o.feasible]
        return max(done, key=lambda o: o.value) if done else None

    def sample_unasked(self, asked: "set[Architecture] | Seen", tries: int = 1000) -> Architecture:
        """A random architecture not in ``asked`` (any random one once the space seems exhausted)."""
        for _ in range(tries):
            a = self.space.sample(self.rng)
            if a not in asked:
                return a
        return self.space.sample(self.rng)


class Seen:
    """The architectures a strategy has asked, up to equivalence (:meth:`SearchSpace.equivalent`): ``a in seen``
    is true when an architecture computing the same function was added. ``len`` counts the architectures added
    (as a set of them would)."""

    def __init__(self, space: SearchSpace):
        self.key = space.equivalent
        self._keys: set[Architecture] = set()
        self._added: set[Architecture] = set()

    def add(self, arch: Architecture) -> None:
        if arch not in self._added:
            self._added.add(arch)
            self._keys.add(self.key(arch))

    def __contains__(self, arch: object) -> bool:
        return isinstance(arch, Architecture) and self.key(arch) in self._keys

    def __len__(self) -> int:
        return len(self._added)


STRATEGIES: Registry[Callable[..., Strategy]] = Registry("strategy")


def register_strategy(name: str):
    """Register a strategy class (or factory ``f(space, seed, **options)``) under ``name``."""
    return STRATEGIES.register_named(name)


def make_strategy(name: str, space: SearchSpace, seed: int = 0, **options: Any) -> Strategy:
    return STRATEGIES.get(name)(space, seed=seed, **options)


def objective_kinds(name: str) -> frozenset[str]:
    """What the registered strategy ``name`` declares it searches by (a factory that declares nothing: single)."""
    return frozenset(getattr(STRATEGIES.get(name), "objectives", {"single"}))


def strategy_options_for(name: str, objective: Any, ref_point: Any = None) -> dict[str, Any]:
    """The options a strategy is told of the objective, by what it declares: ``constraints`` for one that takes
    them (when the objective has constraints), ``ref_point`` (maximised orientation) for one that takes it."""
    kinds = objective_kinds(name)
    out: dict[str, Any] = {}
    constraints = getattr(objective, "constraints", None)
    if constraints and "constrained" in kinds:
        out["constraints"] = [c.spec() for c in constraints]
    if ref_point is not None and "reference_point" in kinds:
        out["ref_point"] = [float(v) for v in ref_point]
    return out
