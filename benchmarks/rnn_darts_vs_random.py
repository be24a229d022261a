"""Recurrent-cell search on a small text (issue 11 target: a DARTS recurrent-cell search reaches lower validation
perplexity than randomly sampled cells of the same space trained equally).

The text is the generated toy corpus of :func:`archsearch.text.write_toy_corpus` (PTB layout, 1,500 training
sentences of a small grammar, vocabulary 34; nothing downloads). The space is ``rnn`` (DARTS's recurrent cell)
at emb = hidden = 32 with 5 nodes (4 searched: 6,144 cells). Per search seed, first-order DARTS (or ENAS with
--strategy enas) searches for --search-epochs on the supernet, the derived cell is trained from scratch by the
training evaluator; --random cells sampled uniformly from the space (seeds 0..R-1) are trained identically (same
epochs, optimiser, batch, training seed). Reported: validation and test perplexity of each, CPU seconds, load.

    python benchmarks/rnn_darts_vs_random.py [--seeds 0 1 2] [--random 8] [--strategy darts]

Set OMP_NUM_THREADS=1 on a shared machine. Results are in docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np

from archsearch.datasets import load_data
from archsearch.evaluators.training import TrainingEvaluator
from archsearch.spaces import get_space
from archsearch.strategies.oneshot import make_oneshot
from archsearch.datasets.text import write_toy_corpus

SPACE = {"emb": 32, "hidden": 32, "nodes": 5}
TRAIN = {"epochs": 4, "batch_size": 16, "optimizer": "adam", "lr": 3e-3}
SEARCH = {"darts": {"batch_size": 16, "w_lr": 0.5, "alpha_lr": 3e-3},
          "enas": {"batch_size": 16, "w_lr": 0.5, "controller_steps": 30, "derive_samples": 10}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--random", type=int, default=8)
    ap.add_argument("--strategy", default="darts", choices=sorted(SEARCH))
    ap.add_argument("--search-epochs", type=int, default=6)
    ap.add_argument("--out", type=Path, default=Path("bench-out/rnn-search"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    corpus = write_toy_corpus(args.out / "toy1500", sentences=1500, seed=0)
    data = load_data(str(corpus))
    space = get_space("rnn", **SPACE)
    ev = TrainingEvaluator(space, data=str(corpus), **TRAIN)
    results = []

    def train(kind: str, arch, extra: dict) -> None:
        c0, load0 = time.process_time(), os.getloadavg()[0]
        r = ev.evaluate(arch, seed=0)
        row = {"kind": kind, "cell": space.format(arch), "val_perplexity": r.metrics["val_perplexity"],
               "test_perplexity": r.metrics["test_perplexity"], "train_cpu_s": time.process_time() - c0,
               "load1": [load0, os.getloadavg()[0]], **extra}
        results.append(row)
        print(json.dumps(row), flush=True)

    for seed in args.seeds:
        c0, load0 = time.process_time(), os.getloadavg()[0]
        s = make_oneshot(args.strategy, space, data, args.search_epochs, seed=seed, **SEARCH[args.strategy])
        history = [s.run_epoch() for _ in range(args.search_epochs)]
        arch = s.derive()
        train(args.strategy, arch, {"seed": seed, "search_cpu_s": time.process_time() - c0,
                                    "search_load1": [load0, os.getloadavg()[0]],
                                    "supernet_train_loss": [round(h["train_loss"], 3) for h in history]})
    for i in range(args.random):
        train("random", space.sample(np.random.default_rng(i)), {"seed": i})
    (args.out / f"results-{args.strategy}.json").write_text(json.dumps(results, indent=1))
    searched = [r["val_perplexity"] for r in results if r["kind"] == args.strategy]
    rand = [r["val_perplexity"] for r in results if r["kind"] == "random"]
    if rand and searched:
        print(f"{args.strategy}: val ppl {statistics.mean(searched):.3f} (n={len(searched)}); random cells: "
              f"{statistics.mean(rand):.3f} ± {statistics.pstdev(rand):.3f} (min {min(rand):.3f}, n={len(rand)}); "
              f"target (searched mean < random mean): "
              f"{'met' if statistics.mean(searched) < statistics.mean(rand) else 'NOT met'}")


if __name__ == "__main__":
    main()
