"""Threads of a one-shot supernet search (issue 22, item 2 "for one-shot supernets the same"): seconds per search
epoch of one DARTS search for processes x threads = 1 x cores (the default: one process on every core's threads),
1 x 1, and 2 x 1 (data-parallel, ``--workers 2``), on an idle machine and beside a second process loading both
cores.

    python benchmarks/oneshot_threads.py --sizes 8 16 --epochs 3

The search: DARTS (first order) on the nb201 space (2 cells per stage, 16 channels), the embedded digits resized to
SIZE x SIZE (8: as they are), seed 0, batch 64; seconds per epoch = mean of epochs 2..E (epoch 1 also starts the
workers). "loaded" = a spawned 2-thread 512x512 matmul loop for the whole condition (trial_parallelism.py).
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from oneshot_dataparallel import resized_digits, run  # (benchmarks/, beside this script)
from trial_parallelism import background_load


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[8, 16])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--loads", nargs="+", default=["idle", "loaded"])
    p.add_argument("--json", default=None)
    a = p.parse_args()
    cores = os.cpu_count() or 1
    conditions = [(1, cores), (1, 1), (2, 1)]
    out = []
    with tempfile.TemporaryDirectory() as d:
        for size in a.sizes:
            data = resized_digits(Path(d) / f"digits{size}.npz", size) if size != 8 else None
            for load in a.loads:
                for workers, threads in conditions:
                    root = Path(d) / f"{size}-{load}-{workers}x{threads}"
                    root.mkdir()
                    with background_load(load == "loaded"):
                        r = run("darts", workers, a.epochs, 16, "process", root, 64, data=data, threads=threads)
                    r.pop("alphas")
                    r.update(size=size, load=load, loadavg=os.getloadavg()[0])
                    print(json.dumps(r), flush=True)
                    out.append(r)
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))
    print(f"\n| input | load | processes x threads | s / epoch (epochs 2..{a.epochs}) | ratio to 1 x {cores} idle | "
          "ratio to the same setting idle |")
    print("|---|---|---|---:|---:|---:|")
    for size in a.sizes:
        idle = {(r["workers"], r["threads"]): r["mean_epoch_seconds"] for r in out
                if r["size"] == size and r["load"] == "idle"}
        for r in (r for r in out if r["size"] == size):
            key = (r["workers"], r["threads"])
            s = r["mean_epoch_seconds"]
            base = idle.get((1, cores))
            print(f"| {size}x{size} | {r['load']} | {key[0]} x {key[1]} | {s:.2f} | "
                  f"{s / base if base else float('nan'):.2f} | {s / idle[key] if key in idle else float('nan'):.2f} |")


if __name__ == "__main__":
    main()
