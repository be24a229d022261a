"""Real training, same wall budget: fixed-epoch search vs ASHA (same proposer) vs random search, against the
space's hand-designed reference and a plain hand-written 4-conv CNN, on data nothing here was tuned on.

Protocol (fixed before running): for each seed, each method runs ``archsearch.search`` on ``--data`` within
``--seconds`` (macro space, the default; bo the default proposer); we count the architectures trained, then
retrain each method's best, the space's reference (a plain conv stack) and a hand-written 4-conv CNN with the
same recipe (``--retrain-epochs`` epochs, SGD + cosine, the trial training loop) and report test accuracy,
mean ± std over seeds. One thread per process; ``--parallel`` processes at once.

    python benchmarks/make_digits28.py --out digits28.npz
    python benchmarks/multifidelity_real.py --data digits28.npz --seconds 300 --seeds 0 1 2
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

METHODS = {  # name -> search keywords (the default warm start: the strategy is told the reference's result first)
    "fixed-epoch bo": {"strategy": "bo", "scheduler": "fifo", "epochs": 6},
    "asha bo": {"strategy": "bo", "scheduler": "asha", "epochs": 9, "min_epochs": 1, "eta": 3},
    "fixed-epoch random": {"strategy": "random", "scheduler": "fifo", "epochs": 6},
    "fixed-epoch bo, no warm start": {"strategy": "bo", "scheduler": "fifo", "epochs": 6, "warm_start": False},
    "asha bo, first rung 1/3 epoch": {"strategy": "bo", "scheduler": "asha", "epochs": 9, "min_epochs": 1 / 3,
                                      "eta": 3},
    "asha bo, rungs 1/3 1 3 6": {"strategy": "bo", "scheduler": "asha", "epochs": 6, "min_epochs": 1 / 3,
                                 "eta": 3},  # the top rung is fixed-epoch search's epochs
    "asha bo, no warm start": {"strategy": "bo", "scheduler": "asha", "epochs": 9, "min_epochs": 1, "eta": 3,
                               "warm_start": False},
}


def hand_cnn(shape):
    """What a person writes first: two conv-conv-pool blocks (32, 64 channels), global pooling, a linear head."""
    from torch import nn

    def c(i, o):
        return nn.Sequential(nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU())
    return nn.Sequential(c(shape.channels, 32), c(32, 32), nn.MaxPool2d(2), c(32, 64), c(64, 64), nn.MaxPool2d(2),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, shape.num_classes))


def retrain(model, data, epochs: int, seed: int) -> float:
    import torch

    from archsearch.training.loop import TrainConfig, train_model
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return train_model(model, data, TrainConfig(epochs=epochs), seed=seed).test_accuracy


def one(job: tuple[str, int, str, float, int, str]) -> dict:
    method, seed, data, seconds, retrain_epochs, root = job
    import torch
    torch.set_num_threads(1)
    import archsearch
    from archsearch.datasets import load_data

    d = load_data(data)
    out = {"method": method, "seed": seed}
    if method == "hand-written cnn":
        torch.manual_seed(seed)
        out["retrained_test"] = retrain(hand_cnn(d.shape), d, retrain_epochs, seed)
        return out
    kw = dict(METHODS[method])
    t0 = time.perf_counter()
    run = archsearch.search("macro", trials=None, seconds=seconds, data=data, seed=seed,
                            out=Path(root) / f"{method.replace(' ', '-')}-{seed}", threads=1, **kw)
    out["wall_seconds"] = time.perf_counter() - t0
    trials = run.summary.trials
    out["trained"] = sum(1 for t in trials if t.status in ("ok", "failed", "stopped"))
    out["best_val"] = run.best.metrics.get("val_accuracy") if run.best else None
    out["vs_reference_val"] = run.versus_reference()
    ref = run.reference or {}
    out["reference_val"] = ref.get("metrics", {}).get("val_accuracy")
    sp = run.space
    torch.manual_seed(seed)
    out["retrained_test"] = retrain(sp.build(run.best.arch, d.shape), d, retrain_epochs, seed) if run.best else None
    if run.best and ref.get("architecture"):  # how far the best found is from the reference, in decisions
        out["decisions_from_reference"] = sum(1 for k, v in ref["architecture"].items()
                                              if run.best.arch.to_dict().get(k) != v)
    if method.startswith("asha bo") and ref.get("architecture"):  # (the same in every arm: seed, recipe)
        from archsearch.space import Architecture
        torch.manual_seed(seed)  # its initial weights from the seed alone, not from what the best's build drew
        out["reference_retrained_test"] = retrain(sp.build(Architecture(ref["architecture"]), d.shape), d,
                                                  retrain_epochs, seed)
    return out


def _ms(xs) -> str:
    xs = [x for x in xs if x is not None]
    if not xs:
        return "-"
    return f"{statistics.mean(xs):.2f} ± {statistics.stdev(xs) if len(xs) > 1 else 0.0:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--retrain-epochs", type=int, default=20)
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--methods", nargs="+", default=list(METHODS) + ["hand-written cnn"])
    ap.add_argument("--json", default=None, help="Write the rows here.")
    args = ap.parse_args()
    root = tempfile.mkdtemp(prefix="mf-real-")
    jobs = [(m, s, str(Path(args.data).resolve()) if Path(args.data).exists() else args.data, args.seconds,
             args.retrain_epochs, root) for s in args.seeds for m in args.methods]
    with ProcessPoolExecutor(args.parallel) as pool:
        rows = list(pool.map(one, jobs))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    print(f"data {args.data}, {args.seconds:.0f} s per search, seeds {args.seeds}, retrained {args.retrain_epochs} "
          f"epochs; runs in {root}")
    print("| method | architectures trained | search wall s | best val % | retrained test % | decisions from "
          "reference |")
    print("|---|---:|---:|---:|---:|---:|")
    for m in args.methods:
        r = [x for x in rows if x["method"] == m]
        print(f"| {m} | {_ms([x.get('trained') for x in r])} | {_ms([x.get('wall_seconds') for x in r])} | "
              f"{_ms([x.get('best_val') for x in r])} | {_ms([x.get('retrained_test') for x in r])} | "
              f"{_ms([x.get('decisions_from_reference') for x in r])} |")
    r = list({x["seed"]: x for x in rows if x.get("reference_retrained_test") is not None}.values())  # one a seed
    if r:
        print(f"| macro reference (plain conv stack) | - | - | {_ms([x.get('reference_val') for x in r])} | "
              f"{_ms([x['reference_retrained_test'] for x in r])} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
