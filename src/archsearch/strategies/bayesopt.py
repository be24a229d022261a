"""Bayesian optimisation over architectures with a Gaussian process (``bo``).

The recipe of White's introduction to NAS and of BANANAS (White, Neiswanger & Savani, AAAI 2021), with a GP as
the model (as in NASBOT, Kandasamy et al., NeurIPS 2018, which also builds the GP on a distance between
architectures):

1. a small random initial design (``n_init`` architectures, 10 as in BANANAS and NASLib);
2. a GP model of f(a) whose kernel is built on a distance between architectures: an RBF kernel on the encoding of
   :mod:`.encodings`. On one-hot vectors squared Euclidean distance is twice the choice-wise Hamming distance,
   so the kernel is ``k(a1, a2) = s * exp(-d_H(a1, a2) / l**2)``, the exponentiated Hamming kernel; on spaces
   with a registered path encoding (NAS-Bench-201) the path bits add BANANAS's path distance. The GP models the
   normal scores of the values' ranks (a Gaussian-copula output warping: accuracies of NAS spaces have a long
   tail of broken networks at chance level, which a stationary GP on raw values fits badly; Salinas et al.,
   ICML 2020; Cowen-Rivers et al., HEBO, JAIR 2022). Signal variance, length scale and noise are fitted by
   maximum marginal likelihood (scikit-learn's GaussianProcessRegressor, L-BFGS warm-started from the last
   fit), again whenever the data grew by ``refit_growth`` (10%) since, and kept in between;
3. expected improvement (Mockus 1978; Jones et al. 1998) as the acquisition, maximised over candidates that were
   never asked:

   * ``trust_region=True`` (the default): inside a trust region of one decision around the best architecture of
     the current climb, as CASMOPOLITAN (Wan et al., "Think Global and Act Local", ICML 2021) and TuRBO
     (Eriksson et al., NeurIPS 2019) do: the most promising neighbour by EI is asked next, the region moves to
     the first neighbour that improves on its centre, and once a region is exhausted without improvement the
     search restarts at a random architecture (as local search does: White et al. 2020). The first climb's
     region is scored by the global GP (all observations); after a restart, as in TuRBO, by a GP on the new
     climb's own observations only (``region_data="climb"``, the default; the global GP's hyperparameters, EI
     over the climb's best), so that a new climb is not steered back into the basins earlier climbs explored
     (with the global GP, ``region_data="all"``, climbs started in the best cell's basin ended in others, and
     on NAS-Bench-201 4 of 30 seeds never found the best cell: docs/benchmarks.md, issue 4). ``region_stop``
     (off by default) declares a region exhausted earlier, as soon as the GP's expected number of untried
     neighbours that beat the centre (the sum of their probabilities of improvement) is below it; measured
     not to help on NAS-Bench-201, the GP being overconfident next to the centre (docs/benchmarks.md, issue 4).
     ``local_model=r`` (off by default) scores the region's neighbours with a local GP instead, as TuRBO does:
     one on the observations within r decisions (Hamming distance) of the centre, with the global GP's
     hyperparameters (not refitted), so a new climb is not steered by the data of other basins; the global GP
     answers while fewer than 5 observations are that close (with ``local_model``, ``region_data`` is not
     used); measured within noise of ``region_data="all"`` on NAS-Bench-201 (docs/benchmarks.md, issue 4);
   * ``trust_region=False``: over the one-step mutations of the ``n_parents`` best architectures so far (all of
     them when a neighbourhood has at most ``per_parent``, a random ``per_parent`` otherwise; BANANAS maximises
     its acquisition by mutating the best architectures) plus ``n_random`` uniform samples.

Several asks in flight (parallel workers): pending architectures enter the GP as fake observations (Ginsbourger
et al., "Kriging is well-suited to parallelize optimization", 2010): ``pending="believer"`` (kriging believer,
the default) tells the GP its own posterior mean there, ``pending="liar"`` the worst value seen (constant liar,
CL-min); hyperparameters are fitted on real observations only. While a trust region waits for results, asks
use the global candidates. Failed or infeasible observations are left out of the fit but remembered: no
architecture is asked twice (unless the whole space has been asked).
"""
from __future__ import annotations

import functools
import math
import warnings
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import Kernel
    from threadpoolctl import ThreadpoolController
# scipy.stats and scikit-learn are imported where a model is first used, not here: they are about 2 s of start-up
# (half of the CLI's) for every command, worker process and strategy that never fits a GP.

from ..result import Observation
from ..space import Architecture, SearchSpace
from .base import Seen, Strategy, register_strategy
from .encodings import Encoder

__all__ = ["BayesianOptimization", "GPSurrogate", "SelectedSurrogate", "expected_improvement"]


def expected_improvement(mean: np.ndarray, std: np.ndarray, best: float, xi: float = 0.0) -> np.ndarray:
    """EI of a maximisation problem: E[max(f - best - xi, 0)] under f ~ N(mean, std**2)."""
    from scipy.stats import norm

    std = np.maximum(std, 1e-12)
    imp = mean - best - xi
    z = imp / std
    return imp * norm.cdf(z) + std * norm.pdf(z)


def copula(y: np.ndarray) -> np.ndarray:
    """Normal scores of the ranks (ties share their mean rank)."""
    from scipy.stats import norm, rankdata

    return norm.ppf((rankdata(y) - 0.5) / len(y))


@functools.cache
def _leading_dot_product() -> type:
    """The class LeadingDotProduct, defined at its first use (it subclasses a scikit-learn kernel)."""
    from sklearn.gaussian_process.kernels import DotProduct

    class LeadingDotProduct(DotProduct):
        """scikit-learn's dot-product kernel on the first ``width`` features only (all of them when None)."""

        def __init__(self, sigma_0: float = 1.0, sigma_0_bounds="fixed", width: int | None = None):
            super().__init__(sigma_0, sigma_0_bounds)
            self.width = width

        def __call__(self, X, Y=None, eval_gradient=False):
            w = self.width
            return super().__call__(X[:, :w], None if Y is None else Y[:, :w], eval_gradient)

        def diag(self, X):
            return super().diag(X[:, :self.width])

    LeadingDotProduct.__module__, LeadingDotProduct.__qualname__ = __name__, "LeadingDotProduct"
    return LeadingDotProduct


def __getattr__(name: str):  # bayesopt.LeadingDotProduct (and pickle's lookup of it) defines it on first use
    if name == "LeadingDotProduct":
        return _leading_dot_product()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class GPSurrogate:
    """A GP on encoded architectures, refitted lazily, with fake observations for pending architectures.

    ``update(archs, values)`` sets the data; ``ei(candidates, pending)`` scores candidates by expected improvement
    over the best (transformed) value. ``linear=True`` adds a linear (dot-product) kernel on the encoding to the
    similarity kernel: a Bayesian linear model of per-decision costs plus a GP on what it leaves, the structure
    of a hardware cost such as latency, which is close to a sum over the network's operations (FBNet's and
    ProxylessNAS's per-op latency tables; nn-Meter, Zhang et al., MobiSys 2021). Use it with raw values
    (``y_transform="standard"``): a rank warping would bend the sum.
    """

    def __init__(self, encoder: Encoder, y_transform: str = "copula", pending: str = "believer",
                 refit_growth: float = 0.1, xi: float = 0.0, linear: bool = False):
        if y_transform not in ("copula", "standard"):
            raise ValueError(f"bo: y_transform must be 'copula' or 'standard', not {y_transform!r}")
        if pending not in ("believer", "liar"):
            raise ValueError(f"bo: pending must be 'believer' or 'liar', not {pending!r}")
        self.encoder, self.y_transform, self.pending_mode = encoder, y_transform, pending
        self.refit_growth, self.xi, self.linear = float(refit_growth), float(xi), bool(linear)
        self.kernel: Kernel | None = None  # the start of the next optimisation; built at the first fit
        self.archs: list[Architecture] = []
        self.y = np.zeros(0)
        self._gp: GaussianProcessRegressor | None = None
        self._optimised_at = 0
        self._threads: ThreadpoolController | None = None

    def update(self, archs: list[Architecture], values: np.ndarray) -> None:
        self.archs = list(archs)
        y = np.asarray(values, dtype=float)
        self.y = copula(y) if self.y_transform == "copula" else y
        self._gp = None

    def _initial_kernel(self) -> Kernel:
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

        kernel = ConstantKernel(1.0, (1e-3, 1e3)) * RBF(2.0, (1e-1, 1e2)) + WhiteKernel(1e-2, (1e-6, 1))
        if self.linear:  # on the one-hot part: one weight per (decision, choice), a per-op cost table
            width = self.encoder.one_hot_width or None
            kernel = kernel + ConstantKernel(0.1, (1e-5, 1e2)) * _leading_dot_product()(1.0, "fixed", width)
        return kernel

    def fit(self) -> GaussianProcessRegressor:
        """The GP on the data (hyperparameters re-optimised when the data grew by ``refit_growth``)."""
        if self._gp is None:
            from sklearn.exceptions import ConvergenceWarning
            from sklearn.gaussian_process import GaussianProcessRegressor

            if self.kernel is None:  # scikit-learn is imported here, not when a strategy is made
                self.kernel = self._initial_kernel()
            optimise = len(self.archs) >= self._optimised_at * (1 + self.refit_growth)
            gp = GaussianProcessRegressor(self.kernel, normalize_y=True, n_restarts_optimizer=0,
                                          optimizer="fmin_l_bfgs_b" if optimise else None)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                gp.fit(self.encoder.many(self.archs), self.y)
            if optimise:
                self._optimised_at = len(self.archs)
                self.kernel = gp.kernel_  # the start of the next optimisation
            self._gp = gp
        return self._gp

    def loo_rank_correlation(self) -> float:
        """Spearman correlation between the values and their leave-one-out predictions (closed form for a GP:
        Rasmussen & Williams, 2006, eq. 5.12); rank-based, so models of differently warped values compare."""
        from scipy.linalg import cho_solve
        from scipy.stats import spearmanr

        gp = self.fit()
        if len(self.y) < 4:
            return -1.0
        k_inv_diag = np.diag(cho_solve((gp.L_, True), np.eye(len(self.y))))
        loo = -gp.alpha_.ravel() / k_inv_diag  # leave-one-out prediction minus the value (normalised units)
        rho = spearmanr(self.y, (self.y - gp._y_train_mean) / gp._y_train_std + loo).correlation
        return -1.0 if rho is None or math.isnan(rho) else float(rho)

    def _with_pending(self, pending: list[Architecture]) -> GaussianProcessRegressor:
        gp = self.fit()
        if not pending:
            return gp
        from sklearn.gaussian_process import GaussianProcessRegressor

        Xp = self.encoder.many(pending)
        fake = gp.predict(Xp) if self.pending_mode == "believer" else np.full(len(pending), self.y.min())
        fantasy = GaussianProcessRegressor(gp.kernel_, normalize_y=True, optimizer=None)
        fantasy.fit(np.vstack([self.encoder.many(self.archs), Xp]), np.concatenate([self.y, fake]))
        return fantasy

    def predict(self, candidates: list[Architecture], pending: list[Architecture] = ()) -> tuple[np.ndarray,
                                                                                                  np.ndarray]:
        """Posterior mean and std (in the model's units) of each candidate, pending architectures counted as
        observed (multi-objective and constrained BO build their acquisitions on this)."""
        X = self.encoder.many(candidates)
        if self._threads is None:
            from threadpoolctl import ThreadpoolController

            self._threads = ThreadpoolController()
        with self._threads.limit(limits=1, user_api="blas"):
            return self._with_pending(list(pending)).predict(X, return_std=True)

    def subset(self, keep: np.ndarray) -> "GPSurrogate":
        """A GP on the observations ``keep`` (indices), in this GP's units and with its fitted hyperparameters,
        never re-optimised (a local model as TuRBO's, Eriksson et al. 2019, without a fit of its own)."""
        sub = GPSurrogate(self.encoder, self.y_transform, self.pending_mode, self.refit_growth, self.xi, self.linear)
        sub.kernel, sub._optimised_at, sub._threads = self.fit().kernel_, math.inf, self._threads
        sub.archs, sub.y = [self.archs[int(i)] for i in keep], self.y[keep]
        return sub

    def ei(self, candidates: list[Architecture], pending: list[Architecture] = (),
           best: float | None = None) -> np.ndarray:
        """Expected improvement of each candidate over ``best`` (default: the best value, in the model's units),
        the pending architectures counted as observed."""
        X = self.encoder.many(candidates)
        if self._threads is None:
            from threadpoolctl import ThreadpoolController

            self._threads = ThreadpoolController()
        with self._threads.limit(limits=1, user_api="blas"):  # matrices of a few hundred rows: threads only cost
            mean, std = self._with_pending(list(pending)).predict(X, return_std=True)
        return expected_improvement(mean, std, float(self.y.max()) if best is None else best, self.xi)


@register_strategy("bo")
class BayesianOptimization(Strategy):
    """GP-based Bayesian optimisation with expected improvement (see the module docstring).

    Options: ``n_init`` random architectures first; ``trust_region`` local (default) or global acquisition;
    ``n_parents`` / ``per_parent`` / ``n_random`` shape the global candidate set; ``xi`` the EI margin (in
    normal-score units); ``pending`` "believer" or "liar"; ``encoding`` "both" (one-hot plus the space's
    registered encoding), "one-hot" (Hamming alone) or "extra" (the registered encoding alone);
    ``y_transform`` "copula" or "standard"; ``refit_growth`` how much the data grows between hyperparameter fits;
    ``region_stop`` restart when the GP expects fewer improving neighbours than this (0: only when all are tried);
    ``local_model`` the radius (in decisions) of the local GP that scores a region's neighbours (0: off);
    ``region_data`` "climb" (after a restart, a region is scored by a GP on its climb's observations) or "all".
    """

    LOCAL_MIN = 5  # fewer observations within ``local_model`` of the centre: the global GP scores the region

    def __init__(self, space: SearchSpace, seed: int = 0, n_init: int = 10, trust_region: bool = True,
                 n_parents: int = 10, per_parent: int = 30, n_random: int = 100, xi: float = 0.0,
                 pending: str = "believer", encoding: str = "both", y_transform: str = "copula",
                 refit_growth: float = 0.1, equivalents: bool = False, region_stop: float = 0.0,
                 local_model: int = 0, region_data: str = "climb"):
        super().__init__(space, seed)
        if n_init < 1 or n_parents < 0 or per_parent < 1 or n_random < 0 or n_parents + n_random < 1:
            raise ValueError("bo needs n_init >= 1, per_parent >= 1 and a non-empty candidate set")
        if not 0.0 <= region_stop < 1.0:
            raise ValueError(f"bo: region_stop must be in [0, 1), not {region_stop!r}")
        if local_model != int(local_model) or local_model < 0:
            raise ValueError(f"bo: local_model must be a radius >= 0 (in decisions), not {local_model!r}")
        self.local_model = int(local_model)
        if region_data not in ("climb", "all"):
            raise ValueError(f"bo: region_data must be 'climb' or 'all', not {region_data!r}")
        self.region_data = region_data  # used when local_model is 0 (a local model picks its own data)
        self.climb: set[Architecture] | None = None  # asked since the last restart (None: the first climb)
        self.n_init, self.trust_region, self.region_stop = n_init, trust_region, float(region_stop)
        self.n_parents, self.per_parent, self.n_random = n_parents, per_parent, n_random
        self.model = GPSurrogate(Encoder(space, mode=encoding), y_transform, pending, refit_growth, xi)
        # every architecture asked or told is never proposed again — nor, with ``equivalents``, one that computes
        # the same function (SearchSpace.equivalent: e.g. nb201 cells differing only on edges into unused nodes;
        # off by default: on the NB201 table it was within noise, 88.84 / 88.89 against 88.89 / 88.92)
        self.asked: set[Architecture] | Seen = Seen(space) if equivalents else set()
        self.ok: dict[Architecture, float] = {}  # successful, feasible observations (the last value of repeats)
        self.centre: Architecture | None = None  # the trust region's centre
        self.restarts = 0
        self._stale = False
        self._neighbours: dict[Architecture, list[Architecture]] = {}
        self._indices: dict[Architecture, tuple[int, ...]] = {}

    # ---- ask / tell -----------------------------------------------------------------------------------------
    def _ask(self) -> Architecture:
        if len(self.asked) < self.n_init or len(self.ok) < 2:
            arch = self._unasked_sample()
        elif self.trust_region:
            arch = self._ask_in_region()
        else:
            arch = self._best_of(self.candidates())
        self.asked.add(arch)
        if self.climb is not None:
            self.climb.add(arch)
        return arch

    def _tell(self, obs: Observation) -> None:
        self.asked.add(obs.arch)
        if obs.failed or not obs.feasible:
            return
        self.ok[obs.arch] = float(obs.value)
        self._stale = True
        c = self.centre
        if c is not None and obs.arch != c and obs.value > self.ok.get(c, -math.inf) \
                and obs.arch in self.neighbours(c):
            self.centre = obs.arch  # first improvement: the region moves at once

    # ---- acquisition ----------------------------------------------------------------------------------------
    def _refresh(self) -> None:
        if self._stale:
            self.model.update(list(self.ok), np.fromiter(self.ok.values(), float, len(self.ok)))
            self._stale = False

    def _best_of(self, candidates: list[Architecture]) -> Architecture:
        """The candidate of largest EI (a random unasked architecture when there is none)."""
        if not candidates:
            return self._unasked_sample()
        self._refresh()
        pend = [a for a in self.pending if a not in self.ok]
        return candidates[int(np.argmax(self.model.ei(candidates, pend)))]

    def local_surrogate(self, pending: list[Architecture]) -> tuple[GPSurrogate, list[Architecture]]:
        """The GP on the observations within ``local_model`` decisions of the centre, and the pending
        architectures that close (the global GP and all of them when fewer than LOCAL_MIN observations are)."""
        self._refresh()
        near = np.flatnonzero(self.distances(self.model.archs) <= self.local_model)
        if len(near) < self.LOCAL_MIN:
            return self.model, pending
        close = [a for a, d in zip(pending, self.distances(pending)) if d <= self.local_model]
        return self.model.subset(near), close

    def distances(self, archs: list[Architecture]) -> np.ndarray:
        """Hamming distance (number of decisions that differ) of each architecture from the centre."""
        if not archs:
            return np.zeros(0, int)
        for a in (self.centre, *archs):
            if a not in self._indices:
                self._indices[a] = self.space.indices(a)
        idx = np.array([self._indices[a] for a in archs])
        return (idx != np.array(self._indices[self.centre])).sum(axis=1)

    def _best_of_local(self, candidates: list[Architecture]) -> Architecture:
        """The candidate of largest EI by the local GP, over the best value seen anywhere (as the global EI)."""
        model, pend = self.local_surrogate([a for a in self.pending if a not in self.ok])
        return candidates[int(np.argmax(model.ei(candidates, pend, best=float(self.model.y.max()))))]

    def _best_of_climb(self, candidates: list[Architecture]) -> Architecture:
        """The candidate of largest EI by a GP on this climb's own observations (since its restart), with the
        global GP's hyperparameters, over the climb's best value: TuRBO's restart, which leaves the data of
        earlier regions behind. The global GP answers while the climb has no result yet."""
        self._refresh()
        keep = np.array([i for i, a in enumerate(self.model.archs) if a in self.climb], int)
        if len(keep) == 0:
            return self._best_of(candidates)
        model = self.model.subset(keep)
        region = set(self.neighbours(self.centre))
        pend = [a for a in self.pending if a not in self.ok and a in self.climb and a in region]
        return candidates[int(np.argmax(model.ei(candidates, pend, best=float(model.y.max()))))]

    def expected_improvers(self, fresh: list[Architecture]) -> float:
        """The GP's expected number of ``fresh`` architectures whose value beats the centre's: the sum of their
        probabilities of improvement (predictive, noise included), which also bounds the probability that any
        of them does (union bound)."""
        from scipy.stats import norm

        self._refresh()
        centre_y = self.model.y[self.model.archs.index(self.centre)]
        mean, std = self.model.predict(fresh)
        return float(norm.cdf((mean - centre_y) / np.maximum(std, 1e-12)).sum())

    def _exhausted(self, fresh: list[Architecture], waiting: bool) -> bool:
        """Whether the region is done: no untried neighbour left or, with ``region_stop`` and none of the region's
        results still out, the GP expects fewer than ``region_stop`` of them to beat the centre."""
        if not fresh:
            return True
        return (self.region_stop > 0 and not waiting and self.centre in self.ok
                and self.expected_improvers(fresh) < self.region_stop)

    def _ask_in_region(self) -> Architecture:
        if self.centre is None:
            self.centre = max(self.ok, key=self.ok.__getitem__)
        region = self.neighbours(self.centre)
        fresh = [a for a in region if a not in self.asked]
        waiting = self.centre in self.pending or any(a in self.pending for a in region)
        if not self._exhausted(fresh, waiting):
            if self.local_model:
                return self._best_of_local(fresh)
            return self._best_of_climb(fresh) if self.climb is not None else self._best_of(fresh)
        if waiting:
            return self._best_of(self.candidates())  # results still out: decide later, explore meanwhile
        self.restarts += 1  # a local optimum of the region (by the GP, with region_stop): restart at random
        self.centre = self._unasked_sample()
        if self.region_data == "climb" and not self.local_model:
            self.climb = {self.centre}  # the new climb's data starts here
        return self.centre

    def candidates(self) -> list[Architecture]:
        """Mutations of the best architectures plus random samples, without repeats or asked architectures."""
        out: dict[Architecture, None] = {}
        for parent in sorted(self.ok, key=lambda a: -self.ok[a])[:self.n_parents]:
            kids = self.neighbours(parent)
            if len(kids) > self.per_parent:
                kids = [kids[int(i)] for i in self.rng.choice(len(kids), self.per_parent, replace=False)]
            out.update((k, None) for k in kids if k not in self.asked)
        for _ in range(self.n_random):
            a = self.space.sample(self.rng)
            if a not in self.asked:
                out[a] = None
        return list(out)

    def neighbours(self, arch: Architecture) -> list[Architecture]:
        """``space.neighbours`` with a cache (the same parents come back ask after ask)."""
        got = self._neighbours.get(arch)
        if got is None:
            if len(self._neighbours) > 10_000:
                self._neighbours.clear()
            got = self._neighbours[arch] = self.space.neighbours(arch)
        return got

    def _unasked_sample(self) -> Architecture:
        return self.sample_unasked(self.asked)


class SelectedSurrogate:
    """Two GPs on the same values, and the one whose leave-one-out predictions rank the values better answers:
    the copula GP (for accuracy-like objectives with a long tail) and the additive GP (``linear=True`` on raw
    values, for costs that are close to a sum over operations). Which one is chosen is re-decided at every update,
    from the data alone (no metric names): ``choice`` says which, ``y`` and ``predict`` are in its units."""

    KINDS = {"copula": ("copula",), "standard": ("standard",), "additive": ("standard", "believer", 0.1, 0.0, True),
             "copula-linear": ("copula", "believer", 0.1, 0.0, True)}

    def __init__(self, encoder: Encoder, models: tuple[str, ...] = ("copula", "additive")):
        if not models or any(m not in self.KINDS for m in models):
            raise ValueError(f"models must be among {', '.join(map(repr, self.KINDS))}, not {models!r}")
        self.models = {m: GPSurrogate(encoder, *self.KINDS[m]) for m in models}
        self.choice = models[0]

    def update(self, archs: list[Architecture], values: np.ndarray) -> None:
        for m in self.models.values():
            m.update(archs, values)
        if len(self.models) > 1:
            scores = {name: m.loo_rank_correlation() for name, m in self.models.items()}
            self.choice = max(scores, key=scores.__getitem__)  # ties: the first listed (copula)

    @property
    def model(self) -> GPSurrogate:
        return self.models[self.choice]

    @property
    def archs(self) -> list[Architecture]:
        return self.model.archs

    @property
    def y(self) -> np.ndarray:
        return self.model.y

    @property
    def warped(self) -> bool:
        return self.model.y_transform == "copula"

    def predict(self, candidates: list[Architecture], pending: list[Architecture] = ()) -> tuple[np.ndarray,
                                                                                                  np.ndarray]:
        return self.model.predict(candidates, pending)
