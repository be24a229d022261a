"""Built-in search spaces, registered by name. Each module is a small space definition citing its paper."""
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
    from .references import REFERENCES
    ref = entry.reference or REFERENCES.get(name)
    return SearchSpace(entry.fn, name=name, config=dict(config), formatter=entry.formatter, parser=entry.parser,
                       reference_fn=ref)


def space_names() -> list[str]:
    return SPACES.names()


from . import macro, mbconv, nb201, superkernel  # noqa: E402,F401  (register built-ins)
try:  # the cell space is written in its own module
    from . import cell  # noqa: F401
except ImportError:  # pragma: no cover
    pass
from . import hierarchical  # noqa: E402,F401  (issue 11: Liu et al. ICLR 2018)
from . import rnn  # noqa: E402,F401  (issue 11: DARTS / ENAS recurrent cells, text)
