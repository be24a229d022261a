"""Every strategy, of both kinds, by one name and one option style.

Black-box strategies (ask/tell, :data:`.base.STRATEGIES`) and one-shot strategies (a supernet trained once,
:data:`.oneshot.ONESHOT`) keep their two contracts, but are found, described and given options in one way:

* :func:`find_strategy` looks a name up among both kinds (an unknown name is one line naming every strategy);
* :func:`describe` says what a strategy declares: its kind, the objectives it searches by, its options (name,
  type, default, read from the black-box constructor's signature or the one-shot ``Options`` dataclass) and the
  first line of its documentation — what ``archsearch strategies`` lists;
* :func:`check_options` checks ``--strategy-opt KEY=VALUE`` (or the API's ``strategy_options``) for both kinds:
  an option the strategy does not have, or a number given as text, is one line naming the strategy's options.
"""
from __future__ import annotations

import dataclasses
import inspect
import re
from dataclasses import dataclass
from typing import Any

from ..errors import UserError
from ..registry import UnknownNameError, did_you_mean
from .base import STRATEGIES, Strategy

__all__ = ["BLACK_BOX", "ONE_SHOT", "OptionInfo", "StrategyInfo", "check_options", "describe", "find_strategy",
           "strategy_kind", "strategy_names"]

BLACK_BOX, ONE_SHOT = "black-box", "one-shot"
#: option names a strategy is given by the run, not by the user's --strategy-opt
_RUN_GIVEN = ("self", "space", "seed", "data", "epochs", "device")


@dataclass(frozen=True)
class OptionInfo:
    name: str
    type: str  # as annotated: int, float, bool, str, or a longer annotation
    default: Any


@dataclass(frozen=True)
class StrategyInfo:
    name: str
    kind: str  # black-box / one-shot
    objectives: frozenset[str]
    options: tuple[OptionInfo, ...]
    open_options: bool  # True: it passes further options on (e.g. to an Optuna sampler), not all are listed
    summary: str


def _oneshot():
    from .oneshot import ONESHOT  # torch-heavy: imported when a one-shot name is looked up
    return ONESHOT


def strategy_names() -> dict[str, list[str]]:
    """``{kind: sorted names}``."""
    return {BLACK_BOX: STRATEGIES.names(), ONE_SHOT: _oneshot().names()}


def find_strategy(name: str) -> tuple[str, Any]:
    """``(kind, registered class or factory)``; an unknown name is one line naming every strategy."""
    if name in STRATEGIES:
        return BLACK_BOX, STRATEGIES.get(name)
    oneshot = _oneshot()
    if name in oneshot:
        return ONE_SHOT, oneshot.get(name)
    hint = did_you_mean(name, sorted(STRATEGIES.names() + oneshot.names()))
    raise UnknownNameError(f"unknown strategy {name!r}{hint}; black-box: {', '.join(STRATEGIES.names())}; "
                           f"one-shot: {', '.join(oneshot.names())}")


def strategy_kind(name: str) -> str:
    return find_strategy(name)[0]


def _type_name(annotation: Any) -> str:
    if annotation is inspect.Parameter.empty:
        return "any"
    return annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))


def describe(name: str) -> StrategyInfo:
    kind, obj = find_strategy(name)
    if kind == ONE_SHOT:
        options = tuple(OptionInfo(f.name, _type_name(f.type), f.default if f.default is not dataclasses.MISSING
                                   else None) for f in dataclasses.fields(obj.Options))
        open_ = False
    else:
        options, open_ = _blackbox_options(obj)
    objectives = frozenset(getattr(obj, "objectives", {"single"}))
    return StrategyInfo(name, kind, objectives, options, open_, _summary(inspect.getdoc(obj) or ""))


def _signature_options(fn: Any) -> tuple[list[OptionInfo], bool]:
    """The named options of ``fn``'s signature, and whether it takes ``**more``."""
    params = list(inspect.signature(fn).parameters.values())
    named = [OptionInfo(p.name, _type_name(p.annotation), None if p.default is inspect.Parameter.empty else p.default)
             for p in params if p.name not in _RUN_GIVEN and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    return named, any(p.kind == p.VAR_KEYWORD for p in params)


def _blackbox_options(obj: Any) -> tuple[tuple[OptionInfo, ...], bool]:
    """A black-box strategy's options: its constructor's, and those of the classes it passes ``**options`` up
    to (a subclass of ``bo`` takes every ``bo`` option), or of what it declares it passes them on to
    (``passes_options_to``: a class, whose options are added, or a text, e.g. Optuna's sampler: then the
    options are open)."""
    out: dict[str, OptionInfo] = {}
    chain = [c for c in obj.__mro__ if "__init__" in c.__dict__ and c not in (Strategy, object)] \
        if isinstance(obj, type) else [obj]
    passed = getattr(obj, "passes_options_to", None)
    if isinstance(passed, str):
        chain = chain[:1]  # its **options go there, not up to its base class
    more = False
    for c in chain:
        named, more = _signature_options(c.__init__ if isinstance(c, type) else c)
        for o in named:
            out.setdefault(o.name, o)
        if not more:
            break
    if isinstance(passed, type):
        sub, _ = _blackbox_options(passed)
        for o in sub:
            out.setdefault(o.name, o)
        more = False
    elif isinstance(passed, str):
        more = True
    elif not chain or isinstance(chain[-1], type):
        more = False  # **options that reach Strategy are refused there
    for key, value in getattr(obj, "option_defaults", {}).items():  # a default that differs from its base's
        if key in out:
            out[key] = dataclasses.replace(out[key], default=value)
    return tuple(out.values()), bool(more)


def _summary(doc: str) -> str:
    """The first sentence of a docstring as plain text (no reST roles or literals, no "see the module")."""
    text = doc.strip().split("\n\n")[0].replace("\n", " ")
    text = re.sub(r":\w+:`~?([^`]+)`", r"\1", text).replace("``", "")
    text = re.sub(r"\s*\((?:see|as in) [^)]*\)", "", text)
    return text.split(". ")[0].split("; ")[0].rstrip(".")


_CHECKS = {"int": (lambda v: isinstance(v, int) and not isinstance(v, bool), "a whole number"),
           "float": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number"),
           "bool": (lambda v: isinstance(v, bool), "true or false"),
           "str": (lambda v: isinstance(v, str), "text")}


def check_options(name: str, options: dict[str, Any], flag: str = "--strategy-opt") -> None:
    """Refuse, in one line, an option ``name`` does not have or a value of the wrong type (both kinds)."""
    info = describe(name)
    known = {o.name: o for o in info.options}
    listing = ", ".join(known) or "none"
    for key, value in options.items():
        opt = known.get(key)
        if opt is None:
            if info.open_options:
                continue  # passed on (its receiver refuses what it does not know)
            raise UserError(f"{flag}: {info.kind} strategy {name!r} has no option {key!r}"
                            f"{did_you_mean(key, known)}; its options: {listing}")
        check = _CHECKS.get(opt.type)
        if check is not None and value is not None and not check[0](value):
            raise UserError(f"{flag} {key}={value!r}: {name}'s {key} is {check[1]} ({opt.type})")
