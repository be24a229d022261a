"""Threads per trial and trials in parallel for the default search (issue 22, item 2): which setting examines
the most architectures per hour on 2 cores, idle and beside a second process that loads both cores.

Conditions (the same random-search trials of the default macro space, seed 0; random search so that every
condition trains the same architectures whatever the order of results):
- inline, default threads (the default before issue 22: one trial at a time, PyTorch's threads = the cores);
- inline, 1 thread;
- process executor, one worker per core, 1 thread each.
"loaded": a second process runs a 2-thread 512x512 matmul loop for the whole condition. Trials per hour are
counted over the busy span (first trial's start to last trial's end) and over the wall time (worker start-up
included). Conditions alternate inside each repetition.

    python benchmarks/trial_parallelism.py --data digits28.npz --trials 8 --epochs 2 --repeats 2 --json out.json
"""
from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path

CONDITIONS = {"inline-default": {"executor": "inline"}, "inline-1t": {"executor": "inline", "threads": 1},
              "process-2x1t": {"executor": "process", "workers": 2, "threads": 1}}


def _load(stop: "mp.synchronize.Event", threads: int) -> None:
    import torch
    torch.set_num_threads(threads)
    a = torch.randn(512, 512)
    while not stop.is_set():
        a = (a @ a).tanh()


@contextlib.contextmanager
def background_load(on: bool, threads: int = 2):
    """While inside: a second (spawned) process running a ``threads``-thread matmul loop, when ``on``."""
    ctx = mp.get_context("spawn")  # a forked child of a process that ran torch can hang in its thread pool
    stop = ctx.Event()
    proc = ctx.Process(target=_load, args=(stop, threads)) if on else None
    if proc:
        proc.start()
        time.sleep(3.0)  # the child imports torch first
    try:
        yield
    finally:
        if proc:
            stop.set()
            proc.join()


def one(name: str, data: str, trials: int, epochs: int, root: Path) -> dict:
    from archsearch.run_config import RunConfig

    cfg = RunConfig(strategy="random", data=data, trials=trials, epochs=epochs, seed=0,
                    out=str(root / f"{name}-{time.time_ns()}"), reference=False, **CONDITIONS[name])
    t0 = time.perf_counter()
    study = cfg.build()
    summary = study.run()
    wall = time.perf_counter() - t0
    done = [t for t in summary.trials if t.finished]
    span = max(t.finished for t in done) - min(t.started for t in done)
    return {"condition": name, "trials": len(done), "wall_s": round(wall, 1), "span_s": round(span, 1),
            "per_hour_span": round(3600 * len(done) / span), "per_hour_wall": round(3600 * len(done) / wall),
            "archs": [summary.space.format(t.arch) if hasattr(summary, "space") else str(t.arch) for t in done]}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="digits")
    p.add_argument("--trials", type=int, default=8)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--loads", nargs="+", default=["idle", "loaded"])
    p.add_argument("--json", default=None)
    a = p.parse_args()
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(a.repeats):
            for load in a.loads:
                for name in CONDITIONS:
                    with background_load(load == "loaded"):
                        r = one(name, a.data, a.trials, a.epochs, Path(tmp))
                    r.update(load=load, repeat=rep, loadavg=os.getloadavg()[0])
                    r.pop("archs")
                    print(json.dumps(r), flush=True)
                    out.append(r)
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))
    print("\n| load | condition | trials/hour (span), per repeat | trials/hour (wall) | ratio to inline-default |")
    print("|---|---|---:|---:|---:|")
    for load in a.loads:
        base = [r["per_hour_span"] for r in out if r["load"] == load and r["condition"] == "inline-default"]
        for name in CONDITIONS:
            rs = [r for r in out if r["load"] == load and r["condition"] == name]
            span = [r["per_hour_span"] for r in rs]
            wall = [r["per_hour_wall"] for r in rs]
            ratio = sum(s / b for s, b in zip(span, base)) / len(span)
            print(f"| {load} | {name} | {', '.join(map(str, span))} | {', '.join(map(str, wall))} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
