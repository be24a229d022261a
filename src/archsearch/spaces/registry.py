"""The registry of spaces by name: ``register_space`` (a decorator on a space function) and ``get_space``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..registry import Registry
from ..space import Architecture, SearchSpace, SpaceFunction


@dataclass(frozen=True)
class SpaceEntry:
    fn: SpaceFunction
    formatter: Callable[[SearchSpace, Architecture], str] | None = None
    parser: Callable[[SearchSpace, str], Architecture] | None = None
    reference: Callable[[SearchSpace], Architecture] | None = None


SPACES: Registry[SpaceEntry] = Registry("space")


def register_space(name: str, formatter=None, parser=None, reference=None
                   ) -> Callable[[SpaceFunction], SpaceFunction]:
    """Register a space function under ``name`` (optionally with its own text form, and ``reference``: a function
    ``space -> Architecture`` giving the hand-designed architecture every search is compared with)."""
    def deco(fn: SpaceFunction) -> SpaceFunction:
        SPACES.register(name)(SpaceEntry(fn, formatter, parser, reference))
        return fn
    return deco


def get_space(name: str, **config: Any) -> SearchSpace:
    """The registered space ``name`` with its configuration (e.g. ``get_space("cell", layers=8)``)."""
    entry = SPACES.get(name)
    ref = entry.reference or _REFERENCES.get(name)
    return SearchSpace(entry.fn, name=name, config=dict(config), formatter=entry.formatter, parser=entry.parser,
                       reference_fn=ref, rebuild=_rebuild)


def _rebuild(name: str, config: dict[str, Any]) -> SearchSpace:
    """How a registered space is unpickled in a worker: looked up again by name (see ``SearchSpace.__reduce__``)."""
    return get_space(name, **config)


_REFERENCES: dict[str, Callable[[SearchSpace], Architecture]] = {}


def register_reference(name: str, fn: Callable[[SearchSpace], Architecture]) -> None:
    """The hand-designed reference of the registered space ``name`` unless it registered its own."""
    _REFERENCES[name] = fn


def space_names() -> list[str]:
    return SPACES.names()
