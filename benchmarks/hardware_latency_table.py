"""Per-op latency table vs measured latency (issue 6): how well does summing table entries (FBNet, ProxylessNAS)
predict the latency of a whole MBConv network on this CPU?

    python benchmarks/hardware_latency_table.py [--input 3x224x224] [--archs 100] [--out DIR] [--table FILE]

1. ``archsearch profile --space mbconv --input ... -o DIR/table.json`` (skipped with ``--table``): every candidate
   op at every input shape it meets, once (median of ``--repeats`` runs, batch 1, 1 thread);
2. ``--archs`` architectures sampled uniformly from the space (seed 0), each built with seeded weights and
   measured end to end (median, or with ``--statistic min`` the fastest, of 30 runs after 5 warm-up runs, batch
   1, 1 thread; table entries alike); with ``--arch-rounds R``
   in R interleaved passes, the median (or min) of the passes;
3. Spearman rank correlation and mean absolute percentage error of the sum of table entries against the
   measurement; also after one scalar calibration (measured / predicted median ratio), which a per-device
   correction would learn.

Prints the markdown section for docs/benchmarks.md and writes results.json and a scatter plot. The load average
is recorded at every measurement: take the numbers when the machine is quiet.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import pearsonr, spearmanr

from archsearch.cli._common import parse_settings
from archsearch.cli._common import input_shape
from archsearch.hardware.cost import count_flops, measure_latency
from archsearch.hardware.latency_table import STATISTICS, LatencyTable, profile_space
from archsearch.spaces import get_space


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--input", default="3x224x224")
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--space-opt", action="append", default=[])
    p.add_argument("--archs", type=int, default=100)
    p.add_argument("--repeats", type=int, default=15, help="timed runs per table entry")
    p.add_argument("--rounds", type=int, default=1, help="passes over the table (entry: median of the passes)")
    p.add_argument("--arch-repeats", type=int, default=30, help="timed runs per architecture and round")
    p.add_argument("--arch-rounds", type=int, default=1, help="interleaved passes over the architectures")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--clock", default="wall", choices=["wall", "cpu"],
                   help="cpu: the thread's CPU time, robust to other processes on a busy machine")
    p.add_argument("--statistic", default="median", choices=list(STATISTICS),
                   help="of the timed runs, for table entries and architectures alike")
    p.add_argument("--table", default=None, help="use this table instead of profiling")
    p.add_argument("--out", default="bench-out/hardware-latency")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(a.threads)
    space = get_space("mbconv", **parse_settings(a.space_opt, "space setting"))
    shape = input_shape(a.input, a.classes, None)
    t0 = time.perf_counter()
    if a.table:
        table = LatencyTable.load(a.table)
    else:
        table = profile_space(space, shape, threads=a.threads, repeats=a.repeats, clock=a.clock, rounds=a.rounds,
                              statistic=a.statistic,
                              progress=lambda d, n: d % 500 == 0 and print(f"profiling {d}/{n}", file=sys.stderr))
        table.save(out / "table.json")
        print(file=sys.stderr)
    profile_s = time.perf_counter() - t0
    rng = np.random.default_rng(a.seed)
    archs = [space.sample(rng) for _ in range(a.archs)]
    models = []
    for i, arch in enumerate(archs):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(i)
            models.append(space.build(arch, shape).eval())
    loads: list[float] = []
    per_round: list[list[float]] = [[] for _ in archs]
    field_, across = STATISTICS[a.statistic]  # of the runs, then over the rounds
    t1 = time.perf_counter()
    for r in range(a.arch_rounds):  # interleaved: a burst of load hits every architecture a little
        for i, model in enumerate(models):
            stats = measure_latency(model, shape.size, threads=a.threads, warmup=5, repeats=a.arch_repeats,
                                    max_seconds=None, copy_model=False, clock=a.clock)
            loads.append(stats.load1)
            per_round[i].append(getattr(stats, field_))
            if (i + 1) % 10 == 0:
                print(f"round {r + 1}: {i + 1}/{len(archs)} measured", file=sys.stderr)
    print(file=sys.stderr)
    rows = [{"arch": space.format(arch), "measured_ms": across(per_round[i]), "rounds_ms": per_round[i],
             "predicted_ms": table.predict_model(model), "macs": count_flops(model, shape.size) // 2}
            for i, (arch, model) in enumerate(zip(archs, models))]
    measure_s = time.perf_counter() - t1
    meas = np.array([r["measured_ms"] for r in rows])
    pred = np.array([r["predicted_ms"] for r in rows])
    macs = np.array([r["macs"] for r in rows], dtype=float)
    scale = float(np.median(meas / pred))
    res = {
        "n": len(rows), "input": list(shape.size), "threads": a.threads, "clock": a.clock, "rounds": a.rounds,
        "arch_rounds": a.arch_rounds, "statistic": a.statistic,
        "space_config": space.config,
        "spearman": float(spearmanr(pred, meas).statistic), "pearson": float(pearsonr(pred, meas).statistic),
        "mape_pct": float(np.mean(np.abs(pred - meas) / meas) * 100),
        "mape_calibrated_pct": float(np.mean(np.abs(scale * pred - meas) / meas) * 100), "calibration": scale,
        "spearman_macs": float(spearmanr(macs, meas).statistic),
        "measured_ms": {"min": float(meas.min()), "median": float(np.median(meas)), "max": float(meas.max())},
        "table_entries": len(table), "profile_seconds": table.meta.get("profile_seconds", profile_s),
        "measure_seconds": measure_s, "load1": {"min": min(loads), "median": statistics.median(loads),
                                                "max": max(loads)},
        "table_load1": table.meta.get("load1"), "torch": torch.__version__, "cpus": os.cpu_count(),
        "command": shlex.join([sys.executable.rsplit("/", 1)[-1], *sys.argv]), "rows": rows,
    }
    (out / "results.json").write_text(json.dumps(res, indent=1))
    _plot(pred, meas, res, out / "latency.png")
    print(_markdown(res))
    return 0 if res["spearman"] >= 0.9 else 1


def _plot(pred, meas, res, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.8, 4.4), dpi=120)
    ax.scatter(meas, pred, s=12)
    lim = [0, max(meas.max(), pred.max()) * 1.05]
    ax.plot(lim, lim, color="0.6", lw=0.8)
    ax.set_xlabel("measured latency (ms)")
    ax.set_ylabel("sum of table entries (ms)")
    ax.set_title(f"Spearman {res['spearman']:.3f}, MAPE {res['mape_pct']:.1f}%", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _markdown(r) -> str:
    return "\n".join([
        f"| architectures | input | Spearman ρ | Pearson r | MAPE | MAPE after one scale factor "
        f"(×{r['calibration']:.3f}) | Spearman ρ of MAdds | measured latency (min / median / max) |",
        "|---:|---|---:|---:|---:|---:|---:|---|",
        f"| {r['n']} | {'x'.join(map(str, r['input']))} | {r['spearman']:.3f} | {r['pearson']:.3f} | "
        f"{r['mape_pct']:.1f}% | {r['mape_calibrated_pct']:.1f}% | {r['spearman_macs']:.3f} | "
        f"{r['measured_ms']['min']:.1f} / {r['measured_ms']['median']:.1f} / {r['measured_ms']['max']:.1f} ms |",
        "",
        f"Table: {r['table_entries']} entries, profiled in {r['profile_seconds']:.0f} s (load {r['table_load1']}); "
        f"architectures measured in {r['measure_seconds']:.0f} s, 1-minute load {r['load1']['min']:.2f}–"
        f"{r['load1']['max']:.2f} (median {r['load1']['median']:.2f}).",
    ])


if __name__ == "__main__":
    sys.exit(main())
