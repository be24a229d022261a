"""Registries by name (timm-style): spaces, strategies, evaluators and datasets are looked up by the names the
CLI and configs use."""
from __future__ import annotations

import difflib
from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    """A name that no registry entry has. ``str()`` is a one-line message naming the choices."""

    def __str__(self) -> str:
        return self.args[0]


def did_you_mean(name: str, choices) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices`` to ``name``, or "" when none is close."""
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj
        return deco

    def register_named(self, name: str) -> Callable[[T], T]:
        """Like ``register``, and a registered class also learns its name (``cls.name``)."""
        def deco(obj: T) -> T:
            if isinstance(obj, type):
                obj.name = name  # type: ignore[attr-defined]
            return self.register(name)(obj)
        return deco

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(f"unknown {self.kind} {name!r}{did_you_mean(name, self._items)}; choose from: "
                                   f"{', '.join(sorted(self._items))}") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def items(self) -> list[tuple[str, Any]]:
        return sorted(self._items.items())
