"""Hardware-aware tabular benchmark on NAS-Bench-201 (issue 10): accuracy x measured latency on several devices.

    python benchmarks/hardware_tabular.py [--devices pixel3,fpga,titan_rtx] [--seeds 20] [--trials 150]
                                          [--workers N] [--out bench-out/hardware_tabular] [--skip-constrained]

For each device, ``archsearch benchmark --objectives val_accuracy,latency_ms --hardware DEVICE`` over the
multi-objective strategies (hypervolume fraction of the table's front; reference point: the table's median
validation accuracy and worst latency); then the constrained benchmark, ``--objectives val_accuracy
--constraint latency_ms<=10.676`` (the table's median Pixel 3 latency) on pixel3, over the constrained
strategies (test accuracy of the best feasible architecture by validation accuracy, and the share of queries
on infeasible architectures). Each run's results.json / results.md / plot land under ``--out``; the tables are
printed as markdown, ready for docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import os
import shlex
import time
from pathlib import Path

from archsearch.benchmark.hardware import markdown_report, run_hw_benchmark, write_hw_outputs

MO_STRATEGIES = "random,nsga2,optuna-nsgaii,optuna-tpe,local-pareto,bo-parego,bo-ehvi"
CONSTRAINED_STRATEGIES = "random,evolution,local,nsga2,optuna-tpe,bo,bo-constrained,bo-ehvi"
PIXEL3_MEDIAN_MS = 10.676


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", default="pixel3,fpga,titan_rtx")
    p.add_argument("--strategies", default=MO_STRATEGIES)
    p.add_argument("--constrained-strategies", default=CONSTRAINED_STRATEGIES)
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--trials", type=int, default=150)
    p.add_argument("--constrained-trials", type=int, default=100)
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--out", type=Path, default=Path("bench-out/hardware_tabular"))
    p.add_argument("--skip-constrained", action="store_true")
    p.add_argument("--skip-multi", action="store_true")
    a = p.parse_args()
    with open("/proc/loadavg") if os.path.exists("/proc/loadavg") else open(os.devnull) as f:
        print(f"loadavg at start: {f.read().strip()}")
    jobs = []
    if not a.skip_multi:
        for dev in [d.strip() for d in a.devices.split(",") if d.strip()]:
            jobs.append((dev, dict(objective="val_accuracy,latency_ms", constraints=[], hardware=dev,
                                   trials=a.trials), a.strategies))
    if not a.skip_constrained:
        jobs.append(("pixel3-constrained", dict(objective="val_accuracy",
                                                constraints=[f"latency_ms<={PIXEL3_MEDIAN_MS}"],
                                                hardware="pixel3", trials=a.constrained_trials),
                     a.constrained_strategies))
    for name, kw, strategies in jobs:
        out = a.out / name
        cmd = ["archsearch", "benchmark", "--strategies", strategies, "--seeds", str(a.seeds), "--trials",
               str(kw["trials"]), "--objectives", kw["objective"], "--hardware", kw["hardware"]]
        for c in kw["constraints"]:
            cmd += ["--constraint", c]
        cmd += ["--out", str(out)] + (["--workers", str(a.workers)] if a.workers else [])
        t0 = time.time()
        res = run_hw_benchmark(strategies.split(","), seeds=a.seeds, workers=a.workers, **kw)
        write_hw_outputs(res, out, command=shlex.join(cmd))
        print(markdown_report(res, shlex.join(cmd)))
        with open("/proc/loadavg") if os.path.exists("/proc/loadavg") else open(os.devnull) as f:
            print(f"{name}: {time.time() - t0:.0f} s; loadavg after: {f.read().strip()}\n", flush=True)


if __name__ == "__main__":
    main()
