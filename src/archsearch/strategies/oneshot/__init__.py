"""One-shot (weight-sharing) strategies: a supernet holds every candidate with shared weights, trained once.

Registered in :data:`ONESHOT` by the names ``archsearch search --strategy`` takes: darts, darts2 (DARTS first and
second order), gdas (GDAS/SNAS), proxyless (ProxylessNAS), enas (ENAS), spos (SPOS / random one-shot), nasib
(NASIB). :mod:`archsearch.oneshot_study` runs them as a study with a run directory; :mod:`.supernet` is the shared
machinery.
"""
from .base import ONESHOT, OneShotOptions, OneShotStrategy, make_oneshot, register_oneshot  # noqa: F401
from .supernet import SUPERNETS, Supernet, SupernetChooser, build_supernet  # noqa: F401
from . import cell_supernet  # noqa: F401,E402  (registers the cell space's all-edges supernet)
from . import darts, gdas, nasib, proxyless, spos  # noqa: F401,E402  (register the strategies)
from . import fbnet  # noqa: F401,E402  (issue 6: FBNet, Gumbel-softmax + latency-table loss)
from . import pdarts, unas  # noqa: F401,E402  (issue 11: P-DARTS, UNAS)
from . import rnn_supernet  # noqa: F401,E402  (issue 11: DARTS's recurrent-cell supernet)
try:
    from . import enas  # noqa: F401  (needs archsearch.strategies.rl's controller)
except ImportError:  # pragma: no cover
    pass

__all__ = ["ONESHOT", "OneShotOptions", "OneShotStrategy", "Supernet", "SupernetChooser", "build_supernet",
           "make_oneshot", "register_oneshot"]
