"""When should ``bo`` give up a trust region? Restart rules on several NAS-Bench-201 landscapes (issue 4).

    python benchmarks/bo_region_nb201.py --objective acc --rule pi --values 0 0.01 0.05 0.2
    python benchmarks/bo_region_nb201.py --objective mnas-pixel3 --rule fail --values 0 6
    python benchmarks/bo_region_nb201.py --objective acc --rule local --values 0 1 2 3
    python benchmarks/bo_region_nb201.py --objective mnas-fpga --rule data --values 0 1

Rules: ``pi`` is ``bo``'s option ``region_stop`` (restart when the GP's expected number of untried neighbours that
beat the centre is below the value; 0 = the default, restart only when every neighbour was tried); ``fail`` is
TuRBO's failure counter (restart after that many asks in the region without a move; 0 = off), a subclass here only;
``local`` is ``bo``'s option ``local_model`` (the region scored by a GP on the observations within that many
decisions of the centre; 0 = the global GP); these three run with ``region_data='all'``, as measured; ``data`` is ``bo``'s option ``region_data``
(0 = ``'all'``: every region scored by the global GP, the default until issue 4's third round; 1 = ``'climb'``, the
default since: after a restart, by a GP on the climb's own observations). Objectives, all over the same 15,625 cells
and the shipped tables: ``acc`` (CIFAR-10 validation accuracy; the test accuracy of the incumbent is reported too),
``mnas-DEV`` (MnasNet's soft reward, validation accuracy x (latency / T)^-0.07, T the table's median latency on DEV)
and ``neglat-DEV`` (-latency in ms), DEV one of the latency table's devices (pixel3, raspi4, fpga, eyeriss, ...).
Seeds 0..N-1, one process. Per rule value: the incumbent's objective (mean ± std) at 25/50/100/150 queries, how many
seeds hold the table's optimum, restarts per run, early restarts (neighbours still untried) and false stops: early
restarts whose centre had an untried neighbour that is better in the table (an improvement the restart gave up).
Results: docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import math

import numpy as np

from archsearch.evaluators import make_evaluator
from archsearch.hardware.objectives import SOFT_W, mnas_reward
from archsearch.result import Observation
from archsearch.spaces import get_space
from archsearch.strategies.bayesopt import BayesianOptimization


class FailureCounterBO(BayesianOptimization):
    """``bo`` that also restarts after ``failures`` asks in the region without the centre moving (TuRBO,
    Eriksson et al. 2019: tau_fail = max(4, d) at batch size 1); logs the centres it abandons."""

    def __init__(self, space, seed: int = 0, failures: int = 0, **options):
        super().__init__(space, seed, **options)
        self.failures, self.abandoned = failures, []
        self._counted, self._fails = None, 0

    def _ask_in_region(self):
        if self.centre is None:
            self.centre = max(self.ok, key=self.ok.__getitem__)
        if self.centre != self._counted:
            self._counted, self._fails = self.centre, 0
        centre, restarts = self.centre, self.restarts
        if self.failures and self._fails >= self.failures and not self.pending:
            self.restarts += 1
            arch = self.centre = self._unasked_sample()
        else:
            arch = super()._ask_in_region()
        if self.restarts > restarts:  # the centre and its neighbours never asked
            self.abandoned.append((centre, [n for n in self.neighbours(centre) if n not in self.asked]))
        elif arch in self.neighbours(centre):
            self._fails += 1
        return arch


def objectives(metrics: dict) -> dict:
    devices = sorted(k[:-3] for k in next(iter(metrics.values())) if k.endswith("_ms") and k != "latency_ms")
    out = {"acc": lambda m: m["val_accuracy"]}
    for dev in devices:
        target = float(np.median([m[f"{dev}_ms"] for m in metrics.values()]))
        out[f"mnas-{dev}"] = lambda m, d=dev, t=target: mnas_reward(m["val_accuracy"], m[f"{d}_ms"], t,
                                                                     SOFT_W, SOFT_W)
        out[f"neglat-{dev}"] = lambda m, d=dev: -m[f"{d}_ms"]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--objective", default="acc")
    p.add_argument("--rule", choices=("pi", "fail", "local", "data"), default="pi")
    p.add_argument("--values", type=float, nargs="+", default=[0.0, 0.05])
    p.add_argument("--seeds", type=int, default=30)
    p.add_argument("--trials", type=int, default=150)
    a = p.parse_args()
    space = get_space("nb201")
    table = make_evaluator("tabular", space)
    metrics = table._metrics
    f = objectives(metrics)[a.objective]
    best = max(f(m) for m in metrics.values())
    value = lambda arch: f(table.evaluate(arch).metrics)  # noqa: E731
    qs = [q for q in (25, 50, 100, 150) if q <= a.trials]
    print(f"objective {a.objective}, rule {a.rule}, {a.seeds} seeds x {a.trials} queries")
    for v in a.values:
        opts = {"pi": {"region_stop": v}, "fail": {"failures": int(v)}, "local": {"local_model": int(v)},
                "data": {"region_data": "climb" if v else "all"}}[a.rule]
        opts.setdefault("region_data", "all")  # pi, fail and local as measured, before 'climb' was the default
        curves, tests, restarts, early, false_stops = [], [], 0, 0, 0
        for seed in range(a.seeds):
            s = FailureCounterBO(space, seed=seed, **opts)
            inc, inc_test, curve, test = -math.inf, math.nan, [], []
            for t in range(a.trials):
                arch = s.ask()
                m = table.evaluate(arch, seed).metrics
                s.tell(Observation(arch, value=f(m), metrics=m, trial=t))
                if f(m) > inc:
                    inc, inc_test = f(m), m["test_accuracy"]
                curve.append(inc)
                test.append(inc_test)
            curves.append(curve)
            tests.append(test)
            restarts += s.restarts
            early += sum(bool(untried) for _, untried in s.abandoned)
            false_stops += sum(any(value(n) > value(c) for n in untried) for c, untried in s.abandoned)
        c, tt = np.array(curves), np.array(tests)
        cells = [f"{c[:, q - 1].mean():.4g} ± {c[:, q - 1].std(ddof=1):.2g}" for q in qs]
        if a.objective == "acc":
            cells = [f"test {tt[:, q - 1].mean():.2f} ± {tt[:, q - 1].std(ddof=1):.2f}" for q in qs]
        found = [int((c[:, q - 1] >= best - 1e-9).sum()) for q in qs]
        print(f"{a.rule}={v:g} | " + " | ".join(cells) + f" | found {'/'.join(map(str, found))} | restarts "
              f"{restarts / a.seeds:.1f} | early {early} | false stops {false_stops} | missed at {qs[-1]}: seeds "
              f"{' '.join(str(i) for i in np.flatnonzero(c[:, -1] < best - 1e-9))}")


if __name__ == "__main__":
    main()
