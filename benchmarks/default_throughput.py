"""The default search's architectures per hour, before and after issue 22's parallel default, in one run.

"before" is the previous default, asked for explicitly (``executor="inline"``: one trial at a time on every core's
threads); "now" is the CLI's default today (`executor="auto"`: one 1-thread worker process per core for trials trained
on the CPU, results told in ask order). Everything else is the default search (macro space, bo, the reference
trained too, 6 epochs a trial), with the budget given (``--trials``/``--seconds``). Counted: trials finished per
wall hour (the pool's start-up included) and the best trial's validation / test accuracy. "loaded": a second
(spawned) process runs a 2-thread 512x512 matmul loop during the search. Conditions alternate inside each seed.

    python benchmarks/make_digits28.py --out digits28.npz
    python benchmarks/default_throughput.py --data digits digits28.npz --seeds 0 1 2 --trials 30 --seconds 60
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from trial_parallelism import background_load  # (benchmarks/, beside this script)

CONDITIONS = {"before": {"executor": "inline"}, "now": {"executor": "auto"}}


def one(name: str, data: str, seed: int, trials: int | None, seconds: float | None, root: Path) -> dict:
    from archsearch.run_config import RunConfig

    cfg = RunConfig(data=None if data == "digits" else data, trials=trials, seconds=seconds, seed=seed,
                    out=str(root / f"{name}-{time.time_ns()}"), **CONDITIONS[name])
    t0 = time.perf_counter()
    study = cfg.build()
    summary = study.run()
    wall = time.perf_counter() - t0
    done = [t for t in summary.trials if t.finished and t.status == "ok"]
    best = summary.best
    return {"condition": name, "data": data, "seed": seed, "executor": study.execution.get("name"),
            "trials": len(done), "wall_s": round(wall, 1), "per_hour": round(3600 * len(done) / wall),
            "best_val": best.metrics.get("val_accuracy") if best else None,
            "best_test": best.metrics.get("test_accuracy") if best else None}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", nargs="+", default=["digits"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--trials", type=int, default=30)
    p.add_argument("--seconds", type=float, default=None)
    p.add_argument("--loads", nargs="+", default=["idle", "loaded"])
    p.add_argument("--json", default=None)
    a = p.parse_args()
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in a.seeds:
            for load in a.loads:
                for data in a.data:
                    for name in CONDITIONS:
                        with background_load(load == "loaded"):
                            r = one(name, data, seed, a.trials, a.seconds, Path(tmp))
                        r.update(load=load, loadavg=round(os.getloadavg()[0], 2))
                        print(json.dumps(r), flush=True)
                        out.append(r)
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))

    def ms(xs):
        return f"{statistics.mean(xs):.1f} ± {statistics.stdev(xs):.1f}" if len(xs) > 1 else f"{xs[0]:.1f}"

    print("\n| data | load | condition | trials | trials/hour | ratio to before (per seed) | best val % | best test % |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for data in a.data:
        for load in a.loads:
            base = {r["seed"]: r["per_hour"] for r in out if (r["data"], r["load"], r["condition"]) ==
                    (data, load, "before")}
            for name in CONDITIONS:
                rs = [r for r in out if (r["data"], r["load"], r["condition"]) == (data, load, name)]
                ratios = [r["per_hour"] / base[r["seed"]] for r in rs if base[r["seed"]]] or [float("nan")]
                print(f"| {data} | {load} | {name} | {ms([r['trials'] for r in rs])} | "
                      f"{ms([r['per_hour'] for r in rs])} | {statistics.mean(ratios):.2f} "
                      f"({', '.join(f'{x:.2f}' for x in ratios)}) | {ms([r['best_val'] for r in rs])} | "
                      f"{ms([r['best_test'] for r in rs])} |")


if __name__ == "__main__":
    main()
