"""Hierarchical evolution vs random search on the hierarchical space (Liu et al., ICLR 2018), on digits.

    python benchmarks/hierarchical_digits.py [--seeds 5] [--trials 30] [--epochs 1] [--workers 1] [--out DIR]

Both strategies get the same trials per seed; each trial trains its network from scratch on the embedded 8x8
digits (the ``train`` evaluator, seeded by the run's seed) and the incumbent is the network of best validation
accuracy; the number reported is its test accuracy, mean ± std over seeds 0..N-1 (``archsearch.benchmark``'s
harness with the training evaluator instead of the table). Kept affordable for a 2-core CPU: a small network
(8 channels, 2 cells; the paper's motif sizes: M2 = 6 level-2 motifs of 4 nodes, a level-3 motif of 5 nodes),
batches of 32, and hierarchical evolution with an initial population of ``trials // 3`` (the paper: 200 initial
genotypes for 7000 evolution steps; its default here is 20, sized for budgets of 100+).

Fidelity: 1 epoch per trial by default, for the search signal and the reported accuracy alike. After 3 epochs
almost every network of this space reaches 96-99% on digits, so the best of 30 random ones sits at the ceiling
and the 360-image validation split ranks the top by noise; after 1 epoch (34 SGD steps) networks of the space
spread over tens of points, so the comparison measures the search, not the noise (docs/benchmarks.md).
"""
from __future__ import annotations

import argparse
import functools
import sys
import time

import numpy as np
import torch

from archsearch.benchmark.tabular import (BenchmarkResult, checkpoints, markdown_report, run_benchmark, run_one,
    write_outputs)
from archsearch.evaluators import make_evaluator
from archsearch.spaces import get_space
from archsearch.strategies import STRATEGIES, register_strategy
from archsearch.strategies.hierarchical import HierarchicalEvolution

SPACE_CONFIG = {"channels": 8, "cells": 2}


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def variant_name(n_init: int) -> str:
    name = f"hierarchical-evolution-init{n_init}"
    if name not in STRATEGIES:  # registered at import too (below) so that worker processes know it
        register_strategy(name)(functools.partial(HierarchicalEvolution, n_init=n_init))
    return name


def run_seeds(names: list[str], seeds: range, trials: int, options: dict, progress) -> BenchmarkResult:
    """``run_benchmark``'s harness (``run_one`` per strategy and seed, random first) on the given seeds, inline."""
    space = get_space("hierarchical", **SPACE_CONFIG)
    evaluator = make_evaluator("train", space, **options)
    names = ["random"] + names
    start = time.perf_counter()
    runs = []
    for seed in seeds:
        for n in names:
            runs.append(run_one(n, seed, trials, space, evaluator))
            progress(len(runs), len(seeds) * len(names))
    per_query = len(seeds) * trials
    return BenchmarkResult(
        space="hierarchical", evaluator="train", table="", seeds=len(seeds), trials=trials,
        curves={n: np.stack([r.test_accuracy for r in runs if r.strategy == n]) for n in names},
        strategy_seconds_per_query={n: sum(r.strategy_seconds for r in runs if r.strategy == n) / per_query
                                    for n in names},
        evaluator_seconds_per_query={n: sum(r.evaluator_seconds for r in runs if r.strategy == n) / per_query
                                     for n in names},
        failed={n: sum(r.failed for r in runs if r.strategy == n) for n in names},
        wall_seconds=time.perf_counter() - start, workers=1, checkpoints=checkpoints(trials))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--first-seed", type=int, default=0,
                   help="run seeds first..first+seeds-1 (more seeds later without rerunning the first ones; 1 worker)")
    p.add_argument("--trials", type=int, default=30)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--out", default="bench-out/hierarchical-digits")
    a = p.parse_args()
    name = variant_name(max(1, a.trials // 3))
    torch.set_num_threads(1)  # inline runs (--workers 1) train with one thread, as the worker processes do
    print(f"load average at start: {loadavg()}", flush=True)
    t0 = time.time()

    def progress(done: int, total: int) -> None:
        print(f"{done}/{total} runs done, {time.time() - t0:.0f} s, load {loadavg()}", flush=True)

    options = {"epochs": a.epochs, "batch_size": a.batch_size, "keep_weights": False}
    if a.first_seed:
        if a.first_seed < 0 or a.workers != 1:
            p.error("--first-seed must be positive and runs with --workers 1")
        res = run_seeds([name], range(a.first_seed, a.first_seed + a.seeds), a.trials, options, progress)
    else:
        res = run_benchmark([name], seeds=a.seeds, trials=a.trials, space="hierarchical", evaluator="train",
                            space_config=SPACE_CONFIG, evaluator_options=options, workers=a.workers,
                            progress=progress)
    command = (f"python benchmarks/hierarchical_digits.py --seeds {a.seeds} --trials {a.trials} "
               f"--epochs {a.epochs} --batch-size {a.batch_size} --workers {a.workers}"
               + (f" --first-seed {a.first_seed}" if a.first_seed else ""))
    write_outputs(res, a.out, command=command)
    print(markdown_report(res, command))
    for n, curve in res.curves.items():
        print(n, "per seed final:", [round(float(x), 2) for x in curve[:, -1]])
    print(f"wall {time.time() - t0:.0f} s; load average at the end: {loadavg()}")
    return 0


for _n in range(1, 101):  # registered at import, so that worker processes (which import this module) know them
    variant_name(_n)

if __name__ == "__main__":
    sys.exit(main())
