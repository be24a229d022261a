"""NAS-Bench-201 tabular benchmark (issue 3): random search, regularized evolution and TPE over 30 seeds.

    python benchmarks/nb201_tabular.py [--out DIR] [--strategies random,evolution,optuna-tpe]

Equivalent to ``archsearch benchmark --space nb201 --strategies random,evolution,optuna-tpe --seeds 30
--trials 150``; it also checks random search and evolution against what independent implementations get on this
table at 100 queries (random about 88.0, evolution about 88.6 mean test accuracy), allowing 3 standard errors,
and exits 1 when either is off. The table it prints goes into docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import math
import sys

from archsearch.benchmark.tabular import markdown_report, run_benchmark, write_outputs

REFERENCE_AT_100 = {"random": 88.0, "evolution": 88.6}  # independent implementations on this table


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="bench-out/nb201-tabular")
    p.add_argument("--strategies", default="random,evolution,optuna-tpe")
    p.add_argument("--seeds", type=int, default=30)
    p.add_argument("--trials", type=int, default=150)
    p.add_argument("--workers", type=int, default=None)
    a = p.parse_args()
    res = run_benchmark(a.strategies.split(","), seeds=a.seeds, trials=a.trials, workers=a.workers)
    command = (f"archsearch benchmark --space nb201 --strategies {a.strategies} --seeds {a.seeds} "
               f"--trials {a.trials} --out {a.out}")
    write_outputs(res, a.out, command=command)
    print(markdown_report(res, command))
    ok = True
    summary = res.summary()
    for name, ref in REFERENCE_AT_100.items():
        if name not in summary or "100" not in summary[name]:
            continue
        got = summary[name]["100"]
        se = got["std"] / math.sqrt(res.seeds)
        verdict = "ok" if abs(got["mean"] - ref) <= 3 * se else "OFF"
        ok &= verdict == "ok"
        print(f"{name:>10} at 100 queries: {got['mean']:.2f} (reference {ref:.1f}, standard error {se:.2f}): "
              f"{verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
