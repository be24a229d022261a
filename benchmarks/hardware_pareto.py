"""Multi-objective search vs random search on the digits (issue 6): with the same number of trials, does the
NSGA-II front (validation accuracy up, measured CPU latency down) dominate random search's by hypervolume?

    python benchmarks/hardware_pareto.py [--seeds 3] [--trials 30] [--epochs 3] [--out DIR]

Every run is ``archsearch search --space mbconv (digits settings) --objective pareto --strategy S --seed N``;
NSGA-II (``nsga2``, population 10) and random search use the same seeds, trials and training. Hypervolume is
computed per run on its own trials with one reference point for all runs (the lowest accuracy and the highest
latency seen in any run, so every trial adds something), and normalised by the reference box. Latency is the
thread's CPU time at batch 1 (``--latency-clock cpu``), steadier than the wall clock on a shared machine.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import archsearch
from archsearch.hardware.objectives import hypervolume, pareto_front

#: The MBConv space at digits scale: half the MobileNetV3 widths, full-resolution stem, up to 3 blocks a stage.
DIGITS_SPACE = {"width_mult": 0.5, "stem_stride": 1, "dropout": 0.0,
                "depths": [[1], [1, 2], [1, 2, 3], [1, 2, 3], [1, 2], [1, 2]]}


def space_args(config: dict = DIGITS_SPACE) -> list[str]:
    return [x for k, v in config.items() for x in ("--space-opt", f"{k}={json.dumps(v, separators=(',', ':'))}")]


def search(strategy: str, seed: int, trials: int, epochs: int, out: Path, extra: list[str]) -> tuple[Path, float]:
    cmd = ["archsearch", "search", "--space", "mbconv", *space_args(), "--strategy", strategy, "--trials",
           str(trials), "--epochs", str(epochs), "--seed", str(seed), "--objective", "pareto", "--latency-clock",
           "cpu", "--out", str(out), "--quiet", *extra]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if done.returncode != 0:
        raise SystemExit(f"{shlex.join(cmd)} failed:\n{done.stderr}")
    return out, time.perf_counter() - t0


def points(run_dir: Path) -> list[tuple[float, float]]:
    t = archsearch.load(run_dir).trials
    t = t[t["status"] == "ok"]
    return list(zip(t["val_accuracy"].astype(float), t["latency_ms"].astype(float)))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--trials", type=int, default=30)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--population", type=int, default=10)
    p.add_argument("--out", default="bench-out/hardware-pareto")
    a = p.parse_args()
    out = Path(a.out)
    runs: dict[str, list[Path]] = {"nsga2": [], "random": []}
    seconds: dict[str, list[float]] = {"nsga2": [], "random": []}
    loads = [os.getloadavg()[0]]
    for seed in range(a.seeds):
        for strat, extra in (("nsga2", ["--strategy-opt", f"population={a.population}"]), ("random", [])):
            run = out / f"{strat}-seed{seed}"
            if not (run / "study.db").exists():
                _, s = search(strat, seed, a.trials, a.epochs, run, extra)
                seconds[strat].append(s)
                loads.append(os.getloadavg()[0])
            runs[strat].append(run)
            print(f"{strat} seed {seed} done", file=sys.stderr)
    pts = {k: [points(r) for r in v] for k, v in runs.items()}
    every = [q for v in pts.values() for run in v for q in run]
    ref_acc, ref_lat = min(q[0] for q in every), max(q[1] for q in every)
    box = (max(q[0] for q in every) - ref_acc) * (ref_lat - min(q[1] for q in every))

    def hv(run):
        return hypervolume([(acc, -lat) for acc, lat in run], (ref_acc - 1e-9, -ref_lat - 1e-9)) / box

    res = {"seeds": a.seeds, "trials": a.trials, "epochs": a.epochs, "population": a.population,
           "reference": {"val_accuracy": ref_acc, "latency_ms": ref_lat}, "space": DIGITS_SPACE,
           "load1": {"min": min(loads), "max": max(loads)}, "strategies": {}}
    for k, v in pts.items():
        hvs = [hv(run) for run in v]
        fronts = [[run[i] for i in pareto_front([(acc, -lat) for acc, lat in run])] for run in v]
        res["strategies"][k] = {"hypervolume": hvs, "mean": float(np.mean(hvs)), "std": float(np.std(hvs, ddof=1))
                                if len(hvs) > 1 else 0.0, "front_sizes": [len(f) for f in fronts],
                                "fronts": fronts, "seconds": seconds[k]}
    wins = sum(x > y for x, y in zip(res["strategies"]["nsga2"]["hypervolume"],
                                     res["strategies"]["random"]["hypervolume"]))
    res["nsga2_wins"] = wins
    (out / "results.json").write_text(json.dumps(res, indent=1))
    print(f"| strategy | normalised hypervolume, mean ± std over {a.seeds} seeds | per seed | front size |")
    print("|---|---:|---|---|")
    for k, r in res["strategies"].items():
        print(f"| {k} | {r['mean']:.3f} ± {r['std']:.3f} | {', '.join(f'{h:.3f}' for h in r['hypervolume'])} | "
              f"{', '.join(map(str, r['front_sizes']))} |")
    print(f"\nNSGA-II's hypervolume is higher on {wins} of {a.seeds} seeds. Reference point: val accuracy "
          f"{ref_acc:.2f}%, latency {ref_lat:.2f} ms. Load {res['load1']['min']:.2f}-{res['load1']['max']:.2f}.")
    return 0 if res["strategies"]["nsga2"]["mean"] > res["strategies"]["random"]["mean"] else 1


if __name__ == "__main__":
    sys.exit(main())
