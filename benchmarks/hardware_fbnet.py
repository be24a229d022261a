"""FBNet on the digits (issue 6): does the latency-table loss steer the differentiable search to faster
architectures?

    python benchmarks/hardware_fbnet.py [--epochs 10] [--seeds 2] [--out DIR]

1. ``archsearch profile`` of the MBConv space in FBNet's layer-wise form (``block_choice=op``, digits settings)
   at the digits' input size (CPU, 1 thread, the thread's CPU time);
2. per seed, ``archsearch search --strategy fbnet`` twice: with the table (``latency_table``, the paper's
   α = 0.2, β = 0.6) and without it (a latency-blind Gumbel-softmax search); the derived architecture is trained
   from scratch (``--train-epochs``);
3. for each derived architecture: the table's predicted latency, the measured latency, MAdds and test accuracy.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import archsearch
from hardware_pareto import DIGITS_SPACE, space_args

FBNET_SPACE = {**DIGITS_SPACE, "block_choice": "op", "kernels": [3, 5], "expand_ratios": [1, 3, 6],
               "se": [False], "activations": ["relu"]}


def run(cmd: list[str]) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if done.returncode != 0:
        raise SystemExit(f"{shlex.join(cmd)} failed:\n{done.stderr}")
    return done.stdout


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--train-epochs", type=int, default=10)
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--beta", type=float, default=0.6)
    p.add_argument("--out", default="bench-out/hardware-fbnet")
    a = p.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    opts = space_args(FBNET_SPACE)
    table = out / "table.json"
    if not table.exists():
        run(["archsearch", "profile", "--space", "mbconv", *opts, "--clock", "cpu", "-o", str(table)])
    rows = []
    for seed in range(a.seeds):
        for name, extra in (("fbnet + table", ["--strategy-opt", f"latency_table={table.resolve()}",
                                               "--strategy-opt", f"latency_beta={a.beta}"]),
                            ("latency-blind", [])):
            rd = out / f"{'table' if extra else 'blind'}-seed{seed}"
            if not (rd / "study.db").exists():
                run(["archsearch", "search", "--space", "mbconv", *opts, "--strategy", "fbnet", "--epochs",
                     str(a.epochs), "--train-epochs", str(a.train_epochs), "--seed", str(seed), "--out", str(rd),
                     "--quiet", *extra])
            best = archsearch.load(rd).best
            cost = json.loads(run(["archsearch", "cost", "--space", "mbconv", *opts, "--arch", str(rd / "best.json"),
                                   "--latency-table", str(table), "--latency-device", "cpu", "--clock", "cpu",
                                   "--json"]))
            rows.append({"search": name, "seed": seed, "arch": cost["architecture"],
                         "predicted_ms": cost["predicted_latency_ms"], "measured_ms": cost["latency_ms"],
                         "macs": cost["macs"], "params": cost["params"],
                         "test_accuracy": best.metrics.get("test_accuracy")})
    (out / "results.json").write_text(json.dumps(rows, indent=1))
    print("| search | seed | derived architecture | predicted (table) | measured (CPU time) | MAdds | test acc |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['search']} | {r['seed']} | `{r['arch']}` | {r['predicted_ms']:.2f} ms | {r['measured_ms']:.2f} ms"
              f" | {r['macs'] / 1e6:.2f}M | {r['test_accuracy']:.2f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
