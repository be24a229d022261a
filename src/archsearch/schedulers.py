"""Multi-fidelity schedulers: which trial runs next, and to how many epochs.

The searcher / scheduler split of Syne Tune and Ray Tune: a black-box strategy (the *searcher*) proposes
architectures; the *scheduler* decides whether a free worker starts a new trial at the lowest rung or continues
a paused one to the next rung (a promoted trial continues from its checkpoint; it is never retrained). Rungs are
epochs ``min_epochs * eta**k`` up to ``max_epochs``; a ``min_epochs`` below one epoch adds rungs of a fraction of
an epoch, ``1/eta**k`` down to it (e.g. 1/3, 1, 3, 9: the first rung trains on a third of one pass over the
data, the first batches of that epoch's shuffled order, and a promotion continues mid-epoch from there).

* ``fifo``: every trial trains ``max_epochs`` (no early stopping; the behaviour before schedulers).
* ``asha``: asynchronous successive halving (Li et al., MLSys 2020): promote a trial as soon as it is in the
  top ``1/eta`` of its rung (and at most ``1/eta`` of the rung's results are promoted), else start a new one —
  no barrier, so workers never wait.
* ``sh``: synchronous successive halving (Jamieson & Talwalkar, AISTATS 2016; Karnin et al. 2013): rounds of
  ``eta**K`` trials; a rung is promoted once all its trials have reported.
* ``hyperband``: asynchronous Hyperband (Li et al., JMLR 2018; the bracketed ASHA of Li et al. 2020): each new
  trial joins a bracket that starts at rung s, drawn in proportion to Hyperband's bracket sizes, so some trials
  get more epochs before their first cut.
* ``bohb``: Hyperband brackets with a model-based searcher (Falkner et al., ICML 2018); the study pairs it with
  the BO strategy (told each trial's first-rung value: the budget every trial has).
* ``median``: the median stopping rule (Golovin et al., KDD 2017, Google Vizier): after every epoch from
  ``min_epochs`` a trial goes on only if its value is at least the median of earlier trials at that epoch.

Schedulers hold no state that cannot be rebuilt: the study replays each stored rung result (``report``) and
each trial running at a rung (``started``) after a restart. Ties in the value are broken by validation loss.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .errors import UserError
from .registry import Registry

Key = tuple[float, float]  # (value, -val_loss): larger is better


@dataclass(frozen=True)
class Decision:
    """Start a new trial (``trial`` None) or continue ``trial``, training it to ``fidelity`` epochs."""

    fidelity: float
    trial: int | None = None
    bracket: int = 0


def epochs_value(x: float) -> float:
    """A fidelity as stored and compared: a whole number of epochs as an int, a fraction as a float."""
    x = float(x)
    return int(round(x)) if abs(x - round(x)) < 1e-9 else x


def epochs_text(x: float) -> str:
    """Epochs for the screen: '9', '1/3' (a rung below one epoch), '0.5'."""
    x = float(x)
    if 0 < x < 1 and abs(1 / x - round(1 / x)) < 1e-6:
        return f"1/{round(1 / x)}"
    return f"{x:.3g}"


def rung_levels(min_epochs: float, max_epochs: int, eta: int) -> list[float]:
    """``min_epochs * eta**k`` below ``max_epochs``, then ``max_epochs`` itself; a ``min_epochs`` below 1: the
    fractions ``1/eta**k`` down to it (``min_epochs`` itself when it is above ``1/eta``), then the rungs from 1."""
    if eta < 2:
        raise UserError(f"the reduction factor eta must be at least 2, got {eta}")
    if not 0 < min_epochs <= max_epochs:
        raise UserError(f"--min-epochs must be above 0 and at most --epochs ({max_epochs}), got {min_epochs:g}")
    if min_epochs < 1:
        below, k = [], 1
        while eta ** -k >= min_epochs * (1 - 1e-6):
            below.insert(0, eta ** -k)
            k += 1
        return (below or [float(min_epochs)]) + rung_levels(1, max_epochs, eta)
    levels, r = [], float(min_epochs)
    while round(r) < max_epochs:
        if not levels or round(r) > levels[-1]:
            levels.append(int(round(r)))
        r *= eta
    return levels + [max_epochs]


@dataclass
class _Bracket:
    """The rungs of one bracket: results per rung, and who was promoted from each."""

    start: int  # index of the rung where its trials start
    results: dict[int, dict[int, Key]] = field(default_factory=dict)  # rung index -> trial -> key
    promoted: dict[int, set[int]] = field(default_factory=dict)  # rung index -> trials sent to the next rung
    trials: set[int] = field(default_factory=set)

    def candidates(self, k: int, eta: int) -> list[int]:
        """Trials of rung ``k`` in its top 1/eta, best first, that are not yet promoted (ASHA's get_job), while
        fewer than 1/eta of the rung's results have been promoted from it.

        The paper's rule alone promotes any trial that is in the top 1/eta of the rung *so far*; with a searcher
        whose proposals improve (BO), most new trials are, and a search promoted 60% of its first rung (33 of
        55, then 14 of 33 and 6 of 14; docs/benchmarks.md), spending four fifths of its budget on promotions. The
        quota keeps successive halving's split (each rung about the same share of the budget) whatever the
        searcher; a good trial that arrives late waits for the quota (more results at its rung), not lost."""
        got = self.results.get(k, {})
        quota = len(got) // eta - len(self.promoted.get(k, set()))
        if quota <= 0:
            return []
        top = sorted(got, key=lambda t: (got[t], -t), reverse=True)[:len(got) // eta]
        return [t for t in top if t not in self.promoted.get(k, set())]


class Scheduler:
    """The interface the study talks to (``fifo`` is this base class)."""

    name = "fifo"
    max_promotions = 0

    def __init__(self, max_epochs: int, min_epochs: int = 1, eta: int = 3, seed: int = 0):
        self.max_epochs, self.eta, self.seed = int(max_epochs), int(eta), seed
        self.min_epochs = epochs_value(min_epochs)
        self.levels = self._levels()
        self.where: dict[int, tuple[int, int]] = {}  # trial -> (bracket, rung index it is running/at)
        self.failed: set[int] = set()

    def _levels(self) -> list[float]:
        return [self.max_epochs]

    def rung(self, fidelity: float, default: int | None = None) -> int:
        """The index of the rung at ``fidelity`` epochs (``default`` when none is; else ValueError)."""
        for k, level in enumerate(self.levels):
            if abs(level - float(fidelity)) < 1e-6:
                return k
        if default is None:
            raise ValueError(f"no rung at {fidelity:g} epochs (rungs: {self.levels})")
        return default

    def config(self) -> dict:
        return {"name": self.name, "max_epochs": self.max_epochs, "min_epochs": self.min_epochs, "eta": self.eta}

    @property
    def multi_fidelity(self) -> bool:
        return len(self.levels) > 1

    def next(self, can_start_new: bool, number: int) -> Decision | None:
        """What a free worker does now; ``number``: the number a new trial would get. None: nothing (wait)."""
        return Decision(self.max_epochs) if can_start_new else None

    def started(self, trial: int, fidelity: float, bracket: int = 0) -> None:
        """``trial`` runs to ``fidelity`` (called for new, promoted and re-queued trials)."""
        self.where[trial] = (bracket, self.rung(fidelity, 0))

    def report(self, trial: int, fidelity: float, key: Key) -> None:
        """``trial`` finished the rung at ``fidelity`` epochs with ``key``."""

    def fail(self, trial: int) -> None:
        """``trial`` failed or was stopped: it is never promoted."""
        self.failed.add(trial)

    def bracket_of(self, number: int) -> int:
        return 0


class ASHA(Scheduler):
    """Asynchronous successive halving (Li et al., MLSys 2020)."""

    name = "asha"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.brackets: dict[int, _Bracket] = {}

    def _levels(self) -> list[float]:
        return rung_levels(self.min_epochs, self.max_epochs, self.eta)

    def _bracket(self, b: int) -> _Bracket:
        if b not in self.brackets:
            self.brackets[b] = _Bracket(start=b)
        return self.brackets[b]

    def started(self, trial: int, fidelity: float, bracket: int = 0) -> None:
        k = self.rung(fidelity)
        br = self._bracket(bracket)
        br.trials.add(trial)
        if trial in self.where and self.where[trial][1] < k:  # a promotion (also when replayed)
            br.promoted.setdefault(self.where[trial][1], set()).add(trial)
        self.where[trial] = (bracket, k)

    def report(self, trial: int, fidelity: float, key: Key) -> None:
        b, _ = self.where.get(trial, (0, 0))
        k = self.rung(fidelity)
        self._bracket(b).results.setdefault(k, {})[trial] = key
        self.where[trial] = (b, k)

    def _promotion(self) -> Decision | None:
        for b in sorted(self.brackets):
            br = self.brackets[b]
            for k in range(len(self.levels) - 2, br.start - 1, -1):
                for t in br.candidates(k, self.eta):
                    if t not in self.failed:
                        return Decision(self.levels[k + 1], t, b)
        return None

    def next(self, can_start_new: bool, number: int) -> Decision | None:
        promo = self._promotion()
        if promo is not None:
            return promo
        if not can_start_new:
            return None
        b = self.bracket_of(number)
        return Decision(self.levels[b], None, b)


class Hyperband(ASHA):
    """Asynchronous Hyperband: brackets starting at rung s, drawn as Hyperband sizes them (Li et al. 2018)."""

    name = "hyperband"

    def bracket_of(self, number: int) -> int:
        top = len(self.levels) - 1  # s_max
        sizes = np.array([math.ceil((top + 1) / (top - s + 1) * self.eta ** (top - s)) for s in range(top + 1)],
                         dtype=float)  # trials of the bracket starting at rung s (s = 0: the most)
        rng = np.random.default_rng(np.random.SeedSequence([int(self.seed), 7919, int(number)]))
        return int(rng.choice(top + 1, p=sizes / sizes.sum()))


class BOHB(Hyperband):
    """Hyperband brackets with a model-based searcher (Falkner et al., ICML 2018): the study uses ``bo``."""

    name = "bohb"


class SuccessiveHalving(ASHA):
    """Synchronous successive halving: rounds of eta**K trials, each rung promoted once it is complete."""

    name = "sh"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.round_size = self.eta ** (len(self.levels) - 1)
        self.round_of: dict[int, int] = {}

    def started(self, trial: int, fidelity: float, bracket: int = 0) -> None:
        self.round_of.setdefault(trial, bracket)
        super().started(trial, fidelity, bracket)

    def _quota(self, k: int) -> int:
        return max(1, self.round_size // self.eta ** k)

    def _complete(self, br: _Bracket, k: int) -> bool:
        """Every trial sent to rung k has reported (or failed)."""
        sent = len(br.trials) if k == 0 else len(br.promoted.get(k - 1, set()))
        done = len(br.results.get(k, {})) + sum(1 for t in br.trials if t in self.failed and
                                                self.where.get(t, (0, 0))[1] == k)
        return sent >= (self._quota(k) if k == 0 else 1) and done >= sent

    def _promotion(self) -> Decision | None:
        for b in sorted(self.brackets):
            br = self.brackets[b]
            for k in range(len(self.levels) - 1):
                if not self._complete(br, k):
                    break
                got = br.results.get(k, {})
                keep = max(1, self._quota(k + 1))
                top = sorted(got, key=lambda t: (got[t], -t), reverse=True)[:keep]
                for t in top:
                    if t not in br.promoted.get(k, set()) and t not in self.failed:
                        return Decision(self.levels[k + 1], t, b)
        return None

    def next(self, can_start_new: bool, number: int) -> Decision | None:
        promo = self._promotion()
        if promo is not None or not can_start_new:
            return promo
        current = max(self.brackets, default=0)
        br = self._bracket(current)
        if len(br.trials) < self.round_size:
            return Decision(self.levels[0], None, current)
        if self._finished(br):
            return Decision(self.levels[0], None, current + 1)
        return None  # the round waits for its rung to complete

    def _finished(self, br: _Bracket) -> bool:
        return all(self._complete(br, k) for k in range(len(self.levels)))


class MedianStopping(Scheduler):
    """Median stopping rule (Golovin et al., KDD 2017): go on after each epoch from ``min_epochs`` while at least
    the median of earlier trials' values at that epoch (``min_samples`` of them needed before any stop)."""

    name = "median"
    min_samples = 3

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.at: dict[int, dict[int, Key]] = {}  # epoch -> trial -> key
        self.go_on: list[tuple[int, int]] = []  # (trial, next fidelity) to continue at once

    def _levels(self) -> list[float]:
        if not 1 <= self.min_epochs <= self.max_epochs or not isinstance(self.min_epochs, int):
            raise UserError(f"--scheduler median looks after every whole epoch: --min-epochs must be a whole number "
                            f"between 1 and --epochs ({self.max_epochs}), got {self.min_epochs:g}")
        return list(range(self.min_epochs, self.max_epochs + 1))

    def started(self, trial: int, fidelity: float, bracket: int = 0) -> None:
        self.go_on = [g for g in self.go_on if g[0] != trial]
        super().started(trial, fidelity, bracket)

    def report(self, trial: int, fidelity: float, key: Key) -> None:
        others = [v for t, v in self.at.get(int(fidelity), {}).items() if t != trial]
        self.at.setdefault(int(fidelity), {})[trial] = key
        if int(fidelity) >= self.max_epochs:
            return
        if len(others) >= self.min_samples and key[0] < float(np.median([v[0] for v in others])):
            return  # stopped: below the median of earlier trials at this epoch
        self.go_on.append((trial, int(fidelity) + 1))

    def next(self, can_start_new: bool, number: int) -> Decision | None:
        for t, fid in self.go_on:
            if t not in self.failed:
                return Decision(fid, t)
        return Decision(self.levels[0]) if can_start_new else None


SCHEDULERS: Registry[Callable[..., Scheduler]] = Registry("scheduler")
for _cls in (Scheduler, ASHA, SuccessiveHalving, Hyperband, BOHB, MedianStopping):
    SCHEDULERS.register(_cls.name)(_cls)


def make_scheduler(name: str, max_epochs: int, min_epochs: float = 1, eta: int = 3, seed: int = 0) -> Scheduler:
    return SCHEDULERS.get(name)(max_epochs, min_epochs=min_epochs, eta=eta, seed=seed)
