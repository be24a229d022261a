"""A latency-constrained search on the digits (issue 6): does it return only architectures within the
constraint, and record the others as infeasible rather than dropping them?

    python benchmarks/hardware_constrained.py [--budget-ms 5] [--trials 30] [--epochs 3] [--out DIR]

Runs ``archsearch search --space mbconv (digits settings) --strategy evolution --constraint latency_ms<=B``
(latency: the thread's CPU time at batch 1, 1 thread) and checks, from the run directory: every trial has a
measured latency; the ``ok`` trials are exactly those within the budget, the others are ``infeasible`` with their
accuracy kept; the best architecture (``show --json``) is within the budget. Then re-measures the best
architecture's latency in a fresh process, to show how far a single measurement can be trusted.
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
from hardware_pareto import space_args


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget-ms", type=float, default=5.0)
    p.add_argument("--trials", type=int, default=30)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--strategy", default="evolution")
    p.add_argument("--out", default="bench-out/hardware-constrained")
    a = p.parse_args()
    run = Path(a.out) / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = ["archsearch", "search", "--space", "mbconv", *space_args(), "--strategy", a.strategy, "--trials",
           str(a.trials), "--epochs", str(a.epochs), "--constraint", f"latency_ms<={a.budget_ms:g}",
           "--latency-clock", "cpu", "--out", str(run), "--quiet"]
    load0 = os.getloadavg()[0]
    if not (run / "study.db").exists():
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            raise SystemExit(f"{shlex.join(cmd)} failed:\n{done.stderr}")
    shown = json.loads(subprocess.run(["archsearch", "show", str(run), "--json"], capture_output=True, text=True,
                                      env=env, check=True).stdout)
    trials = archsearch.load(run).trials
    ok = trials[trials["status"] == "ok"]
    bad = trials[trials["status"] == "infeasible"]
    checks = {
        "every trial measured": bool(trials["latency_ms"].notna().all()),
        "ok trials within the budget": bool((ok["latency_ms"] <= a.budget_ms).all()),
        "infeasible trials over the budget": bool((bad["latency_ms"] > a.budget_ms).all()),
        "infeasible trials keep their accuracy": bool(bad["val_accuracy"].notna().all()),
        "best within the budget": shown["best"] is not None and shown["best"]["latency_ms"] <= a.budget_ms,
    }
    remeasured = [subprocess.run(["archsearch", "cost", "--space", "mbconv", *space_args(), "--arch",
                                 str(run / "best.json"), "--latency-device", "cpu", "--clock", clock, "--json"],
                                capture_output=True, text=True, env=env, check=True) for clock in ("cpu", "wall")]
    again, wall = (json.loads(r.stdout) for r in remeasured)
    best = shown["best"] or {}
    print("| strategy | trials | ok (within budget) | infeasible | best val acc | best latency (search) | "
          "best re-measured (CPU time / wall) | best params | best MAdds |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {a.strategy} | {len(trials)} | {len(ok)} | {len(bad)} | {best.get('val_accuracy', float('nan')):.2f}% | "
          f"{best.get('latency_ms', float('nan')):.2f} ms | {again['latency_ms']:.2f} / {wall['latency_ms']:.2f} ms | "
          f"{int(best.get('params') or 0):,} | {again['macs']:,} |")
    print()
    print(f"Budget latency_ms<={a.budget_ms:g}; the best infeasible trial had "
          f"{bad['val_accuracy'].max() if len(bad) else float('nan'):.2f}% at "
          f"{bad.loc[bad['val_accuracy'].idxmax(), 'latency_ms'] if len(bad) else float('nan'):.2f} ms. "
          f"Load at start {load0:.2f}, at the end {os.getloadavg()[0]:.2f}.")
    for name, passed in checks.items():
        print(f"- {name}: {'yes' if passed else 'NO'}")
    (Path(a.out) / "results.json").write_text(json.dumps({"checks": checks, "command": shlex.join(cmd),
                                                           "n_ok": len(ok), "n_infeasible": len(bad),
                                                           "best": best, "remeasured": again, "wall": wall}, indent=1,
                                                          default=float))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
