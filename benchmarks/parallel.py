"""Parallel search benchmarks (issue 8).

1. Throughput: a training-evaluator search on digits with 1 worker x 1 thread vs 2 workers x 1 thread (threads=1:
   without it one worker would get both cores' threads), for the
   `process` and `ray` executors (trials per hour, measured from the first trial's start to the last trial's end,
   so worker start-up is reported separately).
2. Per-trial overhead of the executors, measured with the tabular evaluator (a lookup costs ~0.01 ms, so
   the time per trial is the executor's own cost): inline vs process vs ray, 1 worker.

Usage: python benchmarks/parallel.py [--trials 24] [--epochs 2] [--overhead-trials 300]
Run on an otherwise idle machine (check /proc/loadavg).
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from archsearch.study import Budget, Study


def throughput(executor: str, workers: int, trials: int, epochs: int, root: Path) -> dict:
    t0 = time.perf_counter()
    kw: dict = {"threads": 1}  # every worker 1 thread
    if executor != "inline":
        kw.update(executor=executor, workers=workers)
    study = Study.create(space="macro", strategy="random", evaluator="train", budget=Budget(trials=trials), seed=0,
                         space_config={"layers": 4}, evaluator_options={"epochs": epochs},
                         run_dir=root / f"tp-{executor}-{workers}", **kw)
    summary = study.run()
    wall = time.perf_counter() - t0
    span = max(t.finished for t in summary.trials) - min(t.started for t in summary.trials)
    trial_s = [t.finished - t.started for t in summary.trials]
    train_s = [t.metrics.get("train_seconds", 0.0) for t in summary.trials if t.metrics]
    return {"executor": executor, "workers": workers, "trials": len(summary.trials), "wall_s": round(wall, 1),
            "busy_span_s": round(span, 1), "trials_per_hour": round(3600 * len(summary.trials) / span, 1),
            # where the time goes: a trial's own duration (driver's view) and its training part (worker's clock);
            # utilisation = the workers' summed trial time over workers x span (1.0: no worker ever idle)
            "mean_trial_s": round(sum(trial_s) / len(trial_s), 3),
            "mean_train_s": round(sum(train_s) / max(1, len(train_s)), 3),
            "utilisation": round(sum(trial_s) / (workers * span), 3)}


def overhead(executor: str, trials: int, root: Path) -> dict:
    kw = {} if executor == "inline" else {"executor": executor, "workers": 1}
    study = Study.create(space="nb201", strategy="random", evaluator="tabular", budget=Budget(trials=trials),
                         seed=0, run_dir=root / f"oh-{executor}", **kw)
    t0 = time.perf_counter()
    summary = study.run()
    wall = time.perf_counter() - t0
    span = max(t.finished for t in summary.trials) - min(t.started for t in summary.trials)
    return {"executor": executor, "trials": trials, "wall_s": round(wall, 2),
            "ms_per_trial": round(1000 * span / trials, 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=24)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--overhead-trials", type=int, default=300)
    ap.add_argument("--out", default="bench-out/parallel.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    print("load average:", open("/proc/loadavg").read().split()[:3])
    res: dict = {"throughput": [], "overhead": []}
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        for ex in ("inline", "process", "ray"):
            res["overhead"].append(overhead(ex, args.overhead_trials, root))
            print(res["overhead"][-1], flush=True)
        for ex, w in (("process", 1), ("process", 2), ("ray", 1), ("ray", 2)):
            res["throughput"].append(throughput(ex, w, args.trials, args.epochs, root))
            print(res["throughput"][-1], flush=True)
    for ex in ("process", "ray"):
        one, two = (r for r in res["throughput"] if r["executor"] == ex)
        res[f"{ex}_speedup"] = round(two["trials_per_hour"] / one["trials_per_hour"], 2)
        print(f"{ex}: 2 workers / 1 worker = {res[f'{ex}_speedup']}x")
    res["load_after"] = open("/proc/loadavg").read().split()[:3]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
