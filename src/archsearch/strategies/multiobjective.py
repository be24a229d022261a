"""Multi-objective and constrained versions of our best single-objective strategies.

* ``bo-ehvi``: Bayesian optimisation with one GP per objective (the GP of :mod:`.bayesopt`: a kernel on the
  architecture encoding, Gaussian-copula warping of each objective) and expected hypervolume improvement as the
  acquisition (Emmerich, Giannakoglou & Naujoks, "Single- and multiobjective evolutionary optimization assisted
  by Gaussian random field metamodels", IEEE TEC 2006), estimated by Monte Carlo with common random numbers
  (Daulton, Balandat & Bakshy, "Differentiable Expected Hypervolume Improvement", NeurIPS 2020). The GPs model
  copula-warped values and the improvement is measured in those warped units (``units="warped"``, the default);
  ``units="raw"`` maps every posterior sample back through the observed warped-to-raw relation and measures the
  improvement in the objectives' own units instead (on NAS-Bench-201 it chased the low-accuracy end of the front,
  where raw areas are large: see docs/benchmarks.md). The hypervolume's reference point is the user's when given
  (``ref_point``, in the objectives' own units and maximised orientation, a minimised metric negated, as BoTorch's
  ``ref_point``; mapped into each model's warped units through the observed (raw, warped) pairs; ``archsearch
  search --reference-point`` and ``archsearch benchmark``, which passes the reference point it scores with): the
  front above it is what EHVI aims at. Without one it is inferred: the nadir of the current front minus 10% of
  its range (BoTorch's ``infer_reference_point``; ``reference="observed"``: the worst feasible values observed,
  minus 10%), which gives the front's ends little weight (on NAS-Bench-201 the inferred point missed the most
  accurate cells that a benchmark's reference point at the worst latency rewards: docs/benchmarks.md).
  The acquisition is maximised over the candidates below, then (``refine`` > 0) by hill climbing on it from the
  ``refine`` best candidates.
  ``models`` chooses each objective's model: ``"copula"`` (the default) the copula GP; ``"auto"`` the copula GP
  or the same with a linear kernel on the one-hot decisions added (a per-op cost table, the structure of latency:
  FBNet's and ProxylessNAS's per-op tables, HELP, nn-Meter), ``"additive"`` the copula GP or the additive GP
  (that linear kernel plus the similarity kernel on raw values; EHVI then measures that objective in raw units),
  re-chosen at every ask by leave-one-out rank correlation, from the data alone. They predict latency better but
  made EHVI worse on NAS-Bench-201 (it spends its queries at the cheap extreme of the front, on cells of equal
  latency and accuracy: docs/benchmarks.md), so they are not the default.
  EHVI is exact-by-sampling for one and two objectives; with three or more, ``bo-ehvi`` uses ParEGO's
  scalarisations instead (the staircase HVI below is two-dimensional).
* ``bo-parego``: ParEGO (Knowles, "ParEGO: a hybrid algorithm with on-line landscape approximation for expensive
  multiobjective optimization problems", IEEE TEC 2006): each ask draws a random weight vector, scalarises the
  normalised objectives by the augmented Tchebycheff function and maximises single-objective EI on a GP of it.
* ``local-pareto``: Pareto local search (Paquete, Chiarandini & Stützle, "Pareto local optimum sets in the
  biobjective traveling salesman problem", 2004): the one-decision neighbourhood of each member of the archive
  of non-dominated architectures is evaluated; once every member has been explored, restart at random (as the
  single-objective local search does: White, Nolen & Savani, UAI 2021).
* ``bo-constrained``: the single-objective ``bo`` (EI) with the acquisition multiplied by the probability of
  feasibility (Gardner et al., "Bayesian Optimization with Inequality Constraints", ICML 2014; Gelbart, Snoek &
  Adams, UAI 2014), its GP fitted on infeasible results too, and EI measured over the best *feasible* value.
  Its default is ``bo``'s global acquisition (mutations of the best feasible architectures plus random ones)
  rather than the trust region: the best feasible architectures sit on the constraint's boundary, where half a
  trust region is infeasible, and the region's restarts ignore feasibility.

Constraints (all four): infeasible observations never enter the front or the incumbent, but they are data: the
objective models learn from them, and a feasibility model weights every acquisition by the probability that a
candidate satisfies the constraints. Without the ``constraints`` option that model is a GP on the feasible /
infeasible labels the strategy is told; with ``constraints=["latency_ms<=10"]`` (what ``archsearch benchmark``
passes) it is one GP per constrained metric on the metric's values, P(metric <= bound) under its posterior:
the plain GP or the additive GP (a linear kernel on the one-hot decisions plus the similarity kernel), whichever
predicts the told values better by leave-one-out rank correlation (``SelectedSurrogate``); on the latency table
the additive one halves the Brier score of P(feasible) and lowers the queries spent on infeasible cells.
Several asks in flight: pending architectures are kriging-believer fantasies in every GP (see :mod:`.bayesopt`).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..hardware.objectives import Constraint, parse_constraint
from ..result import Observation
from ..space import Architecture, SearchSpace
from .base import Seen, Strategy, register_strategy
from .bayesopt import BayesianOptimization, GPSurrogate, SelectedSurrogate, expected_improvement
from .encodings import Encoder

__all__ = ["pareto_mask", "hvi_samples", "FeasibilityModel", "MultiObjectiveBO", "ParetoLocalSearch",
           "ConstrainedBO"]


# ---- Pareto helpers (every component maximised) ----------------------------------------------------------------
def pareto_mask(Y: np.ndarray) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``Y`` (n, k); duplicates of a front point all count."""
    Y = np.asarray(Y, dtype=float)
    if len(Y) == 0:
        return np.zeros(0, bool)
    ge = (Y[:, None, :] >= Y[None, :, :]).all(-1)  # ge[j, i]: j at least as good as i everywhere
    gt = (Y[:, None, :] > Y[None, :, :]).any(-1)
    return ~(ge & gt).any(0)


def hvi_samples(S: np.ndarray, front: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Hypervolume improvement of each sampled point ``S[..., k]`` over ``front`` (m, k) above ``ref`` (k,), for
    k = 1 or 2 (maximisation): the area the point adds to the staircase of the front."""
    k = S.shape[-1]
    if k == 1:
        best = max(float(ref[0]), float(front[:, 0].max()) if len(front) else -math.inf)
        return np.maximum(S[..., 0] - best, 0.0)
    if k != 2:
        raise ValueError("hvi_samples handles one or two objectives")
    f = front[(front > ref).all(1)] if len(front) else front.reshape(0, 2)
    f = f[pareto_mask(f)] if len(f) else f
    f = f[np.argsort(f[:, 0])]  # x ascending, so y descending
    # segments of x: [ref_x, x_1], (x_1, x_2], ..., (x_m, inf) with the front's height y_1, y_2, ..., ref_y
    lo = np.concatenate([[ref[0]], f[:, 0]])
    hi = np.concatenate([f[:, 0], [np.inf]])
    height = np.concatenate([f[:, 1], [ref[1]]])
    x, y = S[..., 0:1], S[..., 1:2]
    width = np.clip(np.minimum(x, hi) - lo, 0.0, None)
    return (width * np.clip(y - height, 0.0, None)).sum(-1)


def unwarp(w: np.ndarray, warped: np.ndarray, raw: np.ndarray, tail: int = 5) -> np.ndarray:
    """Map values in a model's warped units back to the objective's units: piecewise-linear through the observed
    (warped, raw) pairs, extended linearly beyond them with the slope of the ``tail`` outermost observations."""
    xs, idx = np.unique(warped, return_index=True)
    ys = raw[idx]
    if len(xs) < 2:
        return np.full_like(w, ys[0] if len(ys) else 0.0)
    t = min(tail, len(xs) - 1)
    lo_slope = (ys[t] - ys[0]) / (xs[t] - xs[0])
    hi_slope = (ys[-1] - ys[-1 - t]) / (xs[-1] - xs[-1 - t])
    out = np.interp(w, xs, ys)
    out = np.where(w < xs[0], ys[0] + (w - xs[0]) * lo_slope, out)
    return np.where(w > xs[-1], ys[-1] + (w - xs[-1]) * hi_slope, out)


def _vector(obs: Observation) -> tuple[float, ...]:
    return tuple(float(v) for v in obs.values) if obs.values is not None else (float(obs.value),)


def _parse_constraints(constraints: Sequence[str] | str | None) -> tuple[Constraint, ...]:
    if constraints is None:
        return ()
    if isinstance(constraints, str):
        constraints = [constraints]
    return tuple(c if isinstance(c, Constraint) else parse_constraint(c, known=None) for c in constraints)


class FeasibilityModel:
    """P(feasible) of candidate architectures, from the observations told (see the module docstring);
    ``additive=False`` models each constrained metric by the plain GP alone."""

    def __init__(self, encoder: Encoder, constraints: tuple[Constraint, ...] = (), additive: bool = True):
        self.constraints = constraints
        kinds = ("standard", "additive") if additive else ("standard",)
        self.models = [SelectedSurrogate(encoder, kinds) if constraints else GPSurrogate(encoder, "standard")
                       for _ in (constraints or (None,))]
        self.archs: list[Architecture] = []
        self.feasible: list[bool] = []
        self.metrics: list[dict] = []
        self._stale = False

    def add(self, obs: Observation) -> None:
        self.archs.append(obs.arch)
        self.feasible.append(bool(obs.feasible))
        self.metrics.append(obs.metrics)
        self._stale = True

    @property
    def active(self) -> bool:
        """Worth modelling once something infeasible has been seen."""
        return not all(self.feasible)

    def probability(self, candidates: list[Architecture], pending: list[Architecture]) -> np.ndarray:
        from scipy.stats import norm  # imported at first use (start-up: see bayesopt)

        if not self.active or not candidates:
            return np.ones(len(candidates))
        if self._stale:
            self._update()
        p = np.ones(len(candidates))
        if not self.constraints:
            mean, std = self.models[0].predict(candidates, pending)
            return norm.cdf(mean / np.maximum(std, 1e-9))
        for c, model in zip(self.constraints, self.models):
            if not model.archs:
                continue
            mean, std = model.predict(candidates, pending)
            z = (c.bound - mean) / np.maximum(std, 1e-9)
            p *= norm.cdf(z if c.op in ("<=", "<") else -z)
        return p

    def _update(self) -> None:
        if not self.constraints:
            self.models[0].update(self.archs, np.where(self.feasible, 1.0, -1.0))
        else:
            for c, model in zip(self.constraints, self.models):
                pairs = [(a, c.value(m)) for a, m in zip(self.archs, self.metrics) if c.value(m) is not None]
                if pairs:
                    model.update([a for a, _ in pairs], np.array([v for _, v in pairs]))
        self._stale = False


class _ModelBased(Strategy):
    """Shared bookkeeping: what was asked and told (value vectors, feasibility), the feasible front, candidates."""

    def __init__(self, space: SearchSpace, seed: int = 0, n_init: int = 10, n_random: int = 200,
                 encoding: str = "both", constraints: Sequence[str] | str | None = None,
                 equivalents: bool = False):
        super().__init__(space, seed)
        if n_init < 1 or n_random < 0:
            raise ValueError(f"{self.name} needs n_init >= 1 and n_random >= 0")
        self.n_init, self.n_random = int(n_init), int(n_random)
        self.encoder = Encoder(space, mode=encoding)
        self.feasibility = FeasibilityModel(self.encoder, _parse_constraints(constraints))
        # never propose an architecture asked before — nor, with ``equivalents``, one computing the same function
        # (off by default: on the NB201 tables it helped on some devices and hurt on others; docs/benchmarks.md)
        self.asked: set[Architecture] | Seen = Seen(space) if equivalents else set()
        self.told: dict[Architecture, tuple[tuple[float, ...], bool]] = {}  # successful: (vector, feasible)
        self._neighbours: dict[Architecture, list[Architecture]] = {}

    def _tell(self, obs: Observation) -> None:
        self.asked.add(obs.arch)
        if obs.failed:
            return
        self.told[obs.arch] = (_vector(obs), bool(obs.feasible))
        self.feasibility.add(obs)

    def front(self) -> list[Architecture]:
        """The feasible non-dominated architectures told so far."""
        archs = [a for a, (_, ok) in self.told.items() if ok]
        if not archs:
            return []
        mask = pareto_mask(np.array([self.told[a][0] for a in archs]))
        return [a for a, m in zip(archs, mask) if m]

    def neighbours(self, arch: Architecture) -> list[Architecture]:
        got = self._neighbours.get(arch)
        if got is None:
            got = self._neighbours[arch] = self.space.neighbours(arch)
        return got

    def candidates(self) -> list[Architecture]:
        """Unasked neighbours of the front plus ``n_random`` unasked random architectures."""
        out: dict[Architecture, None] = {}
        for a in self.front():
            out.update((n, None) for n in self.neighbours(a) if n not in self.asked)
        for _ in range(self.n_random):
            a = self.space.sample(self.rng)
            if a not in self.asked:
                out[a] = None
        return list(out)

    def _unasked_sample(self) -> Architecture:
        return self.sample_unasked(self.asked)


@register_strategy("bo-ehvi")
class MultiObjectiveBO(_ModelBased):
    """GP-based multi-objective BO by expected hypervolume improvement (``acquisition="ehvi"``) or ParEGO's
    random augmented-Tchebycheff scalarisations (``"parego"``); see the module docstring. Options: ``n_init``
    random architectures first, ``n_random`` random candidates per ask (besides the front's neighbours),
    ``samples`` Monte Carlo samples for EHVI, ``rho`` ParEGO's augmentation, ``ref_point`` the hypervolume's
    reference point (maximised orientation; default inferred from the front), ``models`` "copula", "auto" or
    "additive" (see the module docstring), ``encoding``, ``constraints``, ``equivalents`` (never ask an
    architecture equivalent to an asked one: :meth:`SearchSpace.equivalent`)."""

    objectives = frozenset({"single", "vector", "constrained", "reference_point"})

    def __init__(self, space: SearchSpace, seed: int = 0, acquisition: str = "ehvi", n_init: int = 10,
                 n_random: int = 200, samples: int = 64, rho: float = 0.05, units: str = "warped",
                 refine: int = 0, refine_steps: int = 3, reference: str = "front",
                 ref_point: Sequence[float] | None = None, encoding: str = "both",
                 models: str = "copula", constraints: Sequence[str] | str | None = None,
                 equivalents: bool = False):
        super().__init__(space, seed, n_init, n_random, encoding, constraints, equivalents)
        kinds = {"auto": ("copula", "copula-linear"), "copula": ("copula",), "additive": ("copula", "additive")}
        if models not in kinds:
            raise ValueError(f"{self.name}: models must be 'auto', 'copula' or 'additive', not {models!r}")
        self.model_kinds = kinds[models]
        if acquisition not in ("ehvi", "parego") or samples < 1 or units not in ("raw", "warped"):
            raise ValueError(f"{self.name}: acquisition must be 'ehvi' or 'parego', samples >= 1, units 'raw' "
                             f"or 'warped'")
        self.units = units
        self.refine, self.refine_steps = int(refine), int(refine_steps)
        if reference not in ("front", "observed"):
            raise ValueError(f"{self.name}: reference must be 'front' or 'observed', not {reference!r}")
        self.reference = reference
        self.ref_point = None if ref_point is None else np.asarray(ref_point, dtype=float).ravel()
        if self.ref_point is not None and acquisition != "ehvi":
            raise ValueError("bo-parego does not use a reference point (ref_point): ParEGO scalarises instead")
        if self.ref_point is not None and not np.isfinite(self.ref_point).all():
            raise ValueError(f"{self.name}: ref_point must be finite numbers, not {ref_point!r}")
        self.acquisition, self.samples, self.rho = acquisition, int(samples), float(rho)
        self.models: list[SelectedSurrogate] = []

    def _ask(self) -> Architecture:
        if len(self.asked) < self.n_init or sum(ok for _, ok in self.told.values()) < 2:
            arch = self._unasked_sample()
        else:
            cands = self.candidates()
            arch = self._maximise(self._acquisition(), cands) if cands else self._unasked_sample()
        self.asked.add(arch)
        return arch

    def _maximise(self, acq, cands: list[Architecture]) -> Architecture:
        """The best candidate, then hill climbing on the acquisition over one-decision neighbours from the
        ``refine`` best candidates (the model is cheap; the usual way to maximise an acquisition over a discrete
        space: BANANAS, White et al. 2021; COMBO, Oh et al. 2019)."""
        scores = dict(zip(cands, acq(cands)))
        order = sorted(scores, key=scores.__getitem__, reverse=True)
        for start in order[:self.refine]:
            current = start
            for _ in range(self.refine_steps):
                fresh = [n for n in self.neighbours(current) if n not in self.asked and n not in scores]
                if not fresh:
                    break
                scores.update(zip(fresh, acq(fresh)))
                best = max(fresh, key=scores.__getitem__)
                if scores[best] <= scores[current]:
                    break
                current = best
        return max(scores, key=scores.__getitem__)

    def _acquisition(self):
        """A function scoring candidates: EHVI or a ParEGO EI (one random draw per ask, fixed within the ask), times
        the probability of feasibility."""
        archs = list(self.told)
        Y = np.array([self.told[a][0] for a in archs])
        feasible = np.array([self.told[a][1] for a in archs])
        pend = [a for a in self.pending if a not in self.told]
        k = Y.shape[1]
        if self.acquisition == "parego" or k > 2:
            f = self._parego(archs, Y, feasible, pend)
        else:
            f = self._ehvi(archs, Y, feasible, pend)
        return lambda cands: f(cands) * self.feasibility.probability(cands, pend)

    def _models(self, k: int) -> list[SelectedSurrogate]:
        while len(self.models) < k:
            self.models.append(SelectedSurrogate(self.encoder, self.model_kinds))
        return self.models[:k]

    def _ehvi(self, archs, Y, feasible, pend):
        k = Y.shape[1]
        models = self._models(k)
        for j, model in enumerate(models):
            model.update(archs, Y[:, j])
        warped = [m.y for m in models]  # each model's own units: copula scores, or raw values (additive)
        if self.units == "raw":
            F = Y[feasible]
        else:
            F = np.stack(warped, -1)[feasible]
        front = F[pareto_mask(F)]
        if self.ref_point is not None:
            if len(self.ref_point) != k:
                raise ValueError(f"{self.name}: ref_point has {len(self.ref_point)} values for {k} objectives")
            ref = self.ref_point.copy()
            if self.units != "raw":  # the given point into each model's units, through the observed pairs
                ref = np.array([unwarp(ref[j:j + 1], Y[:, j], warped[j])[0] if m.warped else ref[j]
                                for j, m in enumerate(models)])
        else:
            box = front if self.reference == "front" else F
            lo, hi = box.min(0), box.max(0)
            ref = lo - 0.1 * np.where(hi > lo, hi - lo, 1.0)
        z = self.rng.standard_normal((1, self.samples, k))  # common random numbers across candidates

        def ehvi(cands: list[Architecture]) -> np.ndarray:
            pred = [m.predict(cands, pend) for m in models]
            S = np.stack([p[0] for p in pred], -1)[:, None, :] + np.stack([p[1] for p in pred], -1)[:, None, :] * z
            if self.units == "raw":  # samples of copula models back to the objectives' own units
                S = np.stack([unwarp(S[..., j], warped[j], Y[:, j]) if m.warped else S[..., j]
                              for j, m in enumerate(models)], -1)

            return hvi_samples(S, front, ref).mean(1)
        return ehvi

    def _parego(self, archs, Y, feasible, pend):
        k = Y.shape[1]
        lam = self.rng.dirichlet(np.ones(k))
        lo, hi = Y.min(0), Y.max(0)
        Z = (Y - lo) / np.where(hi > lo, hi - lo, 1.0)
        s = (lam * Z).min(1) + self.rho * (lam * Z).sum(1)  # augmented Tchebycheff (maximised)
        model = self._models(1)[0]
        model.update(archs, s)
        best = float(model.y[feasible].max()) if feasible.any() else float(model.y.max())

        def ei(cands: list[Architecture]) -> np.ndarray:
            mean, std = model.predict(cands, pend)
            return expected_improvement(mean, std, best)
        return ei


@register_strategy("bo-parego")
def _bo_parego(space: SearchSpace, seed: int = 0, constraints: Sequence[str] | str | None = None,
               **options) -> MultiObjectiveBO:
    """ParEGO: :class:`MultiObjectiveBO` with ``acquisition="parego"``."""
    s = MultiObjectiveBO(space, seed, acquisition="parego", constraints=constraints, **options)
    s.name = "bo-parego"
    return s


_bo_parego.passes_options_to = MultiObjectiveBO  # (read by archsearch strategies: its options are bo-ehvi's)


_bo_parego.objectives = frozenset({"single", "vector", "constrained"})  # type: ignore[attr-defined]


@register_strategy("local-pareto")
class ParetoLocalSearch(_ModelBased):
    """Pareto local search (see the module docstring): explores the neighbourhood of every archive member in turn,
    in random order; random restarts once the whole archive is explored. Options: ``n_init``, ``constraints``
    (unused: feasibility comes from the observations)."""

    objectives = frozenset({"single", "vector", "constrained"})

    def __init__(self, space: SearchSpace, seed: int = 0, n_init: int = 10,
                 constraints: Sequence[str] | str | None = None, equivalents: bool = False):
        super().__init__(space, seed, n_init=n_init, n_random=0, equivalents=equivalents)
        self.explored: set[Architecture] = set()
        self.queue: list[Architecture] = []
        self.restarts = 0

    def _ask(self) -> Architecture:
        if len(self.asked) >= self.n_init and not self.queue:
            self._next_member()
        while self.queue:
            a = self.queue.pop()
            if a not in self.asked:
                self.asked.add(a)
                return a
        a = self._unasked_sample()
        self.asked.add(a)
        return a

    def _next_member(self) -> None:
        todo = [a for a in self.front() if a not in self.explored]
        if not todo:
            if self.told and not self.pending:
                self.restarts += 1
            return  # the caller samples at random (a restart, or while results are still out)
        member = todo[int(self.rng.integers(len(todo)))]
        self.explored.add(member)
        nbrs = self.neighbours(member)
        self.queue = [nbrs[int(i)] for i in self.rng.permutation(len(nbrs)) if nbrs[int(i)] not in self.asked]


@register_strategy("bo-constrained")
class ConstrainedBO(BayesianOptimization):
    """``bo`` whose expected improvement is weighted by the probability of feasibility (see the module
    docstring); every ``bo`` option, plus ``constraints``."""

    objectives = frozenset({"single", "constrained"})
    option_defaults = {"region_data": "all"}  # where its defaults differ from bo's (read by archsearch strategies)

    def __init__(self, space: SearchSpace, seed: int = 0, constraints: Sequence[str] | str | None = None,
                 trust_region: bool = False, **options):
        # a local or per-climb model would score a region without the probability of feasibility
        if options.get("local_model") or options.get("region_data", "all") != "all":
            raise ValueError("bo-constrained: local_model and region_data='climb' are not supported")
        options["region_data"] = "all"
        super().__init__(space, seed, trust_region=trust_region, **options)
        self.feasibility = FeasibilityModel(self.model.encoder, _parse_constraints(constraints))
        self.values: dict[Architecture, float] = {}  # every successful observation, feasible or not

    def _tell(self, obs: Observation) -> None:
        super()._tell(obs)
        if not obs.failed:
            self.values[obs.arch] = float(obs.value)
            self.feasibility.add(obs)
            self._stale = True

    def _refresh(self) -> None:
        """The objective GP learns from infeasible results too (their accuracy is as informative as anyone's:
        Gardner et al. 2014)."""
        if self._stale:
            self.model.update(list(self.values), np.fromiter(self.values.values(), float, len(self.values)))
            self._stale = False

    def _best_of(self, candidates: list[Architecture]) -> Architecture:
        """EI over the best feasible value x P(feasible)."""
        if not candidates:
            return self._unasked_sample()
        archs = list(self.values)
        self._refresh()
        feasible = np.array([a in self.ok for a in archs])
        best = float(self.model.y[feasible].max()) if feasible.any() else float(self.model.y.max())
        pend = [a for a in self.pending if a not in self.values]
        acq = self.model.ei(candidates, pend, best=best) * self.feasibility.probability(candidates, pend)
        return candidates[int(np.argmax(acq))]
