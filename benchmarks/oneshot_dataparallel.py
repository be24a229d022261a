"""Data-parallel one-shot search (issue 8): DARTS with 2 processes vs 1 process, every process with 1 thread.

    python benchmarks/oneshot_dataparallel.py [--strategy darts] [--epochs 4] [--channels 16] [--batch-size 64]
        [--executor process] [--transport auto|shm|dist] [--size 32] [--dtype float64] [--threads-baseline]

Runs the same search (nb201 space on the embedded digits, seed 0) with ``workers=1`` and ``workers=2`` and
reports the time per search epoch (mean over epochs 2..E: epoch 1 also pays for starting the second process) and
whether the derived architectures are equal. ``--size N`` resizes the digits to N x N (bilinear) first: the
same task with the per-image arithmetic of CIFAR-sized inputs, where data parallelism is meant to pay. Take the
numbers on an otherwise idle machine (the load average is printed).
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path


def resized_digits(path: Path, size: int) -> str:
    """The embedded digits resized to ``size`` x ``size`` (bilinear), as an .npz file at ``path``; its path."""
    import numpy as np
    import torch
    from sklearn.datasets import load_digits
    d = load_digits()
    x = torch.from_numpy(d.images / 16.0).float().unsqueeze(1)
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    np.savez(path, x=x.squeeze(1).numpy(), y=d.target)
    return str(path)


def run(strategy: str, workers: int, epochs: int, channels: int, executor: str, root: Path, batch: int = 64,
        transport: str = "auto", sync_bn: bool = True, data: str | None = None, dtype: str = "float32",
        threads: int = 1) -> dict:
    import torch
    from archsearch.storage import RunStore
    from archsearch.oneshot_study import OneShotStudy

    torch.set_num_threads(threads)
    study = OneShotStudy.create(space="nb201", strategy=strategy, epochs=epochs, seed=0,
                                space_config={"channels": channels, "cells_per_stage": 2},
                                strategy_options={"batch_size": batch, "dtype": dtype}, evaluator_options={"epochs": 1},
                                run_dir=root / f"{strategy}-{workers}-{threads}", data=data, workers=workers,
                                executor=executor, threads=threads, transport=transport, sync_bn=sync_bn)
    t0 = time.perf_counter()
    summary = study.run()
    store = RunStore(root / f"{strategy}-{workers}-{threads}")
    epochs_ = store.epochs()
    secs = [e.metrics["seconds"] for e in epochs_]
    store.close()
    per_epoch = [b - a for a, b in zip(secs, secs[1:])]
    return {"workers": workers, "threads": threads, "epoch_seconds": per_epoch,
            "mean_epoch_seconds": sum(per_epoch) / len(per_epoch),
            "first_epoch_seconds": secs[0], "total_seconds": time.perf_counter() - t0,
            "arch": study.space.format(summary.best.arch) if summary.best else None, "alphas": epochs_[-1].alphas}


def alpha_gap(one: dict, two: dict) -> tuple[float, float]:
    """The smallest gap between an edge's two most probable operations in the 1-process search, and the largest
    difference of an operation's probability between the two searches: where the gap is below the difference,
    the derived operation of that edge is decided by floating-point rounding, not by the data."""
    import numpy as np
    if not one or not two:
        return float("nan"), float("nan")
    margin = min(float(np.diff(np.sort(np.asarray(p, float))[-2:])[0]) for p in one.values())
    drift = max(float(np.abs(np.asarray(one[k], float) - np.asarray(two[k], float)).max()) for k in one)
    return margin, drift


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--strategy", default="darts")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--size", type=int, default=None,
                   help="resize the 8x8 digits to SIZE x SIZE first (default: the embedded digits as they are)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"],
                   help="float64: both searches in double precision, where they must derive the same architecture")
    p.add_argument("--threads-baseline", action="store_true",
                   help="compare 1 process x 1 thread with 1 process x 2 threads instead (how far rounding alone "
                        "moves the search)")
    p.add_argument("--executor", default="process", choices=["process", "ray"])
    p.add_argument("--no-sync-bn", action="store_true",
                   help="per-process BatchNorm statistics (as DDP without SyncBatchNorm) instead of synchronised ones")
    p.add_argument("--transport", default="auto", choices=["auto", "shm", "dist"],
                   help="collectives: shared memory (auto on local processes) or torch.distributed (gloo)")
    a = p.parse_args()
    print("load average before:", open("/proc/loadavg").read().strip())
    with tempfile.TemporaryDirectory() as d:
        data = resized_digits(Path(d) / "digits.npz", a.size) if a.size else None
        one = run(a.strategy, 1, a.epochs, a.channels, a.executor, Path(d), a.batch_size, data=data, dtype=a.dtype)
        if a.threads_baseline:
            two = run(a.strategy, 1, a.epochs, a.channels, a.executor, Path(d), a.batch_size, data=data,
                      dtype=a.dtype, threads=2)
        else:
            two = run(a.strategy, 2, a.epochs, a.channels, a.executor, Path(d), a.batch_size, a.transport,
                      not a.no_sync_bn, data=data, dtype=a.dtype)
    ratio = two["mean_epoch_seconds"] / one["mean_epoch_seconds"]
    margin, drift = alpha_gap(one.pop("alphas"), two.pop("alphas"))
    out = {"strategy": a.strategy, "executor": a.executor, "transport": a.transport, "sync_bn": not a.no_sync_bn,
           "channels": a.channels, "size": a.size or 8, "dtype": a.dtype,
           "batch_size": a.batch_size, "one": one, "two": two,
           "ratio": ratio, "same_arch": one["arch"] == two["arch"],
           "smallest_top2_margin": margin, "largest_probability_difference": drift, "cores": os.cpu_count(),
           "load_after": open("/proc/loadavg").read().strip()}
    print(json.dumps(out, indent=2))
    print(f"\n| processes × threads | s / epoch (epochs 2..{a.epochs}) | ratio | derived architecture |")
    print("|---|---|---|---|")
    for r in (one, two):
        print(f"| {r['workers']} × {r['threads']} | {r['mean_epoch_seconds']:.2f} | "
              f"{r['mean_epoch_seconds'] / one['mean_epoch_seconds']:.2f} | `{r['arch']}` |")
    print(f"\nsmallest top-2 probability gap (1 process) {margin:.2e}; largest probability difference between the "
          f"two searches {drift:.2e}")


if __name__ == "__main__":
    main()
