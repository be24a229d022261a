"""The default search's architectures per hour, before and after issue 22's parallel default, in one run.

"before" is the previous default, asked for explicitly (``executor="inline"``: one trial at a time on every core's
threads); "now" is the CLI's default today (`executor="auto"`: one 1-thread worker process per core for trials trained
on the CPU, results told in ask order). Everything else is the default search (macro space, bo, the reference
trained too, 6 epochs a trial), with the budget given (``--trials``/``--seconds``). Counted: trials finished per
wall hour (the pool's start-up included) and the best trial's validation / test accuracy. "loaded": a second
(spawned) process runs a 2-thread 512x512 matmul loop during the search. Conditions alternate inside each seed.

    python benchmarks/make_digits28.py --out digits28.npz
    python benchmarks/default_throughput.py --data digits digits28.npz --seeds 0 1 2 --trials 30 --seconds 60

``--filed TREE`` adds the condition the issue asks to compare with, "today's" when it was filed: ``archsearch
search`` of another checkout (``git worktree add TREE f02dc04``, the parent of issue 22's first change) run as a
command with ``PYTHONPATH=TREE/src``, beside the same command of this checkout (``cli``), each counted from its run
database (interpreter start-up included in both).
"""
from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
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


def one_cli(name: str, tree: Path, data: str, seed: int, trials: int | None, seconds: float | None,
            root: Path) -> dict:
    """``archsearch search`` of the checkout ``tree`` with only the budget, data and seed given."""
    out = root / f"{name}-{time.time_ns()}"
    cmd = [sys.executable, "-c", "import sys; from archsearch.cli import main; sys.argv[0] = 'archsearch'; main()",
           "search", "--seed", str(seed), "--out", str(out)]
    cmd += [] if data == "digits" else ["--data", data]
    cmd += [] if trials is None else ["--trials", str(trials)]
    cmd += [] if seconds is None else ["--seconds", str(seconds)]
    env = dict(os.environ, PYTHONPATH=str(tree / "src"))
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    conn = sqlite3.connect(f"{(out / 'study.db').resolve().as_uri()}?mode=ro", uri=True)
    rows = conn.execute("SELECT value, metrics FROM trials WHERE status = 'ok' AND finished IS NOT NULL").fetchall()
    conn.close()
    best = json.loads(max(rows, key=lambda r: r[0])[1]) if rows else {}
    return {"condition": name, "data": data, "seed": seed, "executor": "cli", "trials": len(rows),
            "wall_s": round(wall, 1), "per_hour": round(3600 * len(rows) / wall),
            "best_val": best.get("val_accuracy"), "best_test": best.get("test_accuracy")}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", nargs="+", default=["digits"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--trials", type=int, default=30)
    p.add_argument("--seconds", type=float, default=None)
    p.add_argument("--loads", nargs="+", default=["idle", "loaded"])
    p.add_argument("--json", default=None)
    p.add_argument("--filed", type=Path, default=None,
                   help="a checkout of the commit the issue was filed on: compare its CLI with this one's")
    a = p.parse_args()
    if a.filed is not None:
        here = Path(__file__).resolve().parents[1]
        runners = {"filed": lambda *x: one_cli("filed", a.filed.resolve(), *x),
                   "cli": lambda *x: one_cli("cli", here, *x)}
    else:
        runners = {name: (lambda *x, n=name: one(n, *x)) for name in CONDITIONS}
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in a.seeds:
            for load in a.loads:
                for data in a.data:
                    for name, run in runners.items():
                        with background_load(load == "loaded"):
                            r = run(data, seed, a.trials, a.seconds, Path(tmp))
                        r.update(load=load, loadavg=round(os.getloadavg()[0], 2))
                        print(json.dumps(r), flush=True)
                        out.append(r)
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))

    def ms(xs):
        xs = [x for x in xs if x is not None]  # (a condition that finished no trial has no best)
        if not xs:
            return "–"
        return f"{statistics.mean(xs):.1f} ± {statistics.stdev(xs):.1f}" if len(xs) > 1 else f"{xs[0]:.1f}"

    first = next(iter(runners))  # the condition the others are compared with
    print(f"\n| data | load | condition | trials | trials/hour | ratio to {first} (per seed) | "
          "best val % | best test % |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for data in a.data:
        for load in a.loads:
            base = {r["seed"]: r["per_hour"] for r in out if (r["data"], r["load"], r["condition"]) ==
                    (data, load, first)}
            for name in runners:
                rs = [r for r in out if (r["data"], r["load"], r["condition"]) == (data, load, name)]
                ratios = [r["per_hour"] / base[r["seed"]] for r in rs if base[r["seed"]]] or [float("nan")]
                print(f"| {data} | {load} | {name} | {ms([r['trials'] for r in rs])} | "
                      f"{ms([r['per_hour'] for r in rs])} | {statistics.mean(ratios):.2f} "
                      f"({', '.join(f'{x:.2f}' for x in ratios)}) | {ms([r['best_val'] for r in rs])} | "
                      f"{ms([r['best_test'] for r in rs])} |")


if __name__ == "__main__":
    main()
