"""Trial throughput (issue 22): the training-step time of archsearch's evaluator against the best of a grid of
plain-PyTorch settings for the same model, per space, on an idle machine and with a second process loading every
core.

For each space (macro, cell, nb201, mbconv, superkernel, rnn) a few architectures are sampled (seeded) and built at
each input size (the space's default 3x32x32, and 1x28x28; the rnn space takes token windows). For each model:

* ``archsearch``: one epoch of :class:`archsearch.train.Trainer` (what a trial runs), timed per step, with the
  settings archsearch picks itself (the threads of the process, the memory format the Trainer uses);
* the plain grid: the same forward + backward + SGD step written in plain PyTorch, for every combination of
  threads (1 .. cores), memory format (contiguous, channels_last) and ``torch.compile`` (off, on; its compile time
  reported apart, and whether a trial of ``--epochs`` epochs would pay it back).

A step is timed as the median of ``--steps`` steps after ``--warmup`` steps. ``--load`` runs the measurement
again while a second process keeps every core busy (a matrix-multiply loop with as many threads as cores, as
another user's job would). Output: a markdown table per condition, and ``--json``.

    python benchmarks/throughput.py --json throughput.json                  # idle and loaded, every space
    python benchmarks/throughput.py --spaces macro --sizes 28 --no-compile  # a quick look
    python benchmarks/throughput.py --paired 3 --archs 1                    # archsearch vs plain, same setting
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from archsearch.datasets import Dataset
from archsearch.space import InputShape
from archsearch.spaces import get_space
from archsearch.training.loop import TrainConfig, Trainer, _logits
from trial_parallelism import background_load  # (benchmarks/, beside this script)

SPACES = ["macro", "cell", "nb201", "mbconv", "superkernel", "rnn"]
SMALL = {"cell": {"layers": 5, "channels": 16}, "nb201": {}, "macro": {}, "mbconv": {}, "superkernel": {},
         "rnn": {}}


@dataclass
class Case:
    space: str
    size: str
    arch_index: int
    model_fn: Any  # () -> nn.Module
    x: torch.Tensor
    y: torch.Tensor


def cases(spaces: list[str], sizes: list[str], archs: int, batch: int, seed: int) -> list[Case]:
    out = []
    for name in spaces:
        space = get_space(name, **SMALL.get(name, {}))
        rng = np.random.default_rng(seed)
        picks = [space.sample(rng) for _ in range(archs)]
        if name == "rnn":
            vocab, window = 1000, 35
            shapes = {"text": InputShape(1, 1, window, vocab)}
        else:
            shapes = {s: (InputShape(3, 32, 32, 10) if s == "32" else InputShape(1, 28, 28, 10)) for s in sizes}
        for size, shape in shapes.items():
            g = torch.Generator().manual_seed(seed)
            if name == "rnn":
                x = torch.randint(0, shape.num_classes, (batch, shape.width), generator=g)
                y = torch.randint(0, shape.num_classes, (batch, shape.width), generator=g)
            else:
                x = torch.randn(batch, *shape.size, generator=g)
                y = torch.randint(0, shape.num_classes, (batch,), generator=g)
            for i, arch in enumerate(picks):
                out.append(Case(name, size, i, lambda a=arch, s=shape, sp=space: sp.build(a, s), x, y))
    return out


def _loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(_logits(model(x)), y)


def plain_step_ms(case: Case, threads: int, channels_last: bool, compiled: bool, steps: int, warmup: int
                  ) -> tuple[float, float]:
    """Median ms of a plain forward + backward + SGD step, and the compile seconds (0 when not compiled)."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = case.model_fn()
    x, y = case.x, case.y
    if channels_last and x.dim() == 4:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    run = torch.compile(model) if compiled else model
    model.train()
    compile_s = 0.0
    times = []
    for k in range(warmup + steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = _loss(run, x, y)
        loss.backward()
        opt.step()
        dt = time.perf_counter() - t0
        if compiled and k == 0:
            compile_s = dt
        if k >= warmup:
            times.append(dt)
    return 1000 * statistics.median(times), compile_s


def trial_threads() -> int:
    """The intra-op threads a trial of the default search trains with on this machine (``executor="auto"``: one
    1-thread worker per core on a CPU with several cores; otherwise the process's threads)."""
    from archsearch.run_config import RunConfig

    threads = RunConfig(executor="auto")._execution(30)["threads"]
    return int(threads) if threads else DEFAULT_THREADS


def archsearch_step_ms(case: Case, steps: int, warmup: int) -> float:
    """One Trainer epoch of ``warmup + steps`` batches, as a trial runs it (archsearch's own settings: the
    threads a trial's worker has, the memory format the Trainer picks; token windows train through the same
    Trainer on a TextDataset, as the rnn space's trials do)."""
    from archsearch.datasets.text import TextDataset

    torch.set_num_threads(TRIAL_THREADS)
    torch.manual_seed(0)
    model = case.model_fn()
    n = len(case.x) * (warmup + steps)
    rep = lambda t: t.repeat(warmup + steps, *([1] * (t.dim() - 1)))  # noqa: E731
    x, y = rep(case.x), rep(case.y)
    if case.space == "rnn":
        data: Dataset = TextDataset("bench", x, y, x[:2], y[:2], x[:2], y[:2], int(case.y.max()) + 1,
                                    vocab=[str(i) for i in range(int(case.y.max()) + 1)])
    else:
        data = Dataset("bench", x, y, x[:2], y[:2], x[:2], y[:2], 10)
    trainer = Trainer(model, data, TrainConfig(epochs=1, batch_size=len(case.x)), seed=0)
    per_step: list[float] = []
    t_last = [time.perf_counter()]
    orig = trainer.opt.step

    def timed_step(*a: Any, **k: Any) -> Any:
        r = orig(*a, **k)
        now = time.perf_counter()
        per_step.append(now - t_last[0])
        t_last[0] = now
        return r
    trainer.opt.step = timed_step  # type: ignore[method-assign]
    trainer.train_until(1)
    assert n == len(x)
    return 1000 * statistics.median(per_step[warmup:])


DEFAULT_THREADS = torch.get_num_threads()
TRIAL_THREADS = trial_threads()


def measure(cs: list[Case], steps: int, warmup: int, compile_too: bool, epochs: int, log) -> list[dict[str, Any]]:
    cores = os.cpu_count() or 1
    rows = []
    for c in cs:
        grid: dict[str, float] = {}
        compile_cost: dict[str, float] = {}
        for threads in sorted({1, cores}):
            for cl in (False, True):
                if cl and c.x.dim() != 4:
                    continue
                for comp in ((False, True) if compile_too and threads == TRIAL_THREADS else (False,)):
                    key = f"{threads}t{' cl' if cl else ''}{' compile' if comp else ''}"
                    try:
                        ms, cs_ = plain_step_ms(c, threads, cl, comp, steps, warmup)
                    except Exception as e:  # noqa: BLE001 - a setting that does not work for a model is skipped
                        log(f"{c.space} {c.size} #{c.arch_index} {key}: {type(e).__name__}: {str(e)[:100]}")
                        continue
                    grid[key] = ms
                    if comp:
                        compile_cost[key] = cs_
        ours = archsearch_step_ms(c, steps, warmup)
        best_key = min(grid, key=grid.get)
        n_batches = 50 * epochs  # a trial of `epochs` epochs of ~50 batches: does compiling pay for itself?
        pays = {k: (grid[k.replace(" compile", "")] - grid[k]) / 1000 * n_batches > compile_cost[k]
                for k in compile_cost}
        rows.append({"space": c.space, "size": c.size, "arch": c.arch_index, "archsearch_ms": ours,
                     "grid_ms": grid, "best": best_key, "best_ms": grid[best_key],
                     "compile_seconds": compile_cost, "compile_pays": pays})
        log(f"{c.space:12s} {c.size:5s} #{c.arch_index}: archsearch {ours:7.1f} ms, best {best_key} "
            f"{grid[best_key]:7.1f} ms ({' '.join(f'{k}={v:.0f}' for k, v in grid.items())})")
    return rows


def paired(cs: list[Case], steps: int, warmup: int, repeats: int, log) -> list[dict[str, Any]]:
    """archsearch's step against the plain step at the same threads and memory format (channels_last for image
    batches, as archsearch trains on the CPU), measured alternately ``repeats`` times: a shared machine's drift
    falls on both alike. The ratio is the median of the repetitions' ratios."""
    rows = []
    for c in cs:
        cl = c.x.dim() == 4
        ours, plain = [], []
        for _ in range(repeats):
            plain.append(plain_step_ms(c, TRIAL_THREADS, cl, False, steps, warmup)[0])
            ours.append(archsearch_step_ms(c, steps, warmup))
        ratio = statistics.median(o / p for o, p in zip(ours, plain))
        rows.append({"space": c.space, "size": c.size, "arch": c.arch_index, "archsearch_ms": ours, "plain_ms": plain,
                     "ratio": ratio})
        log(f"{c.space:12s} {c.size:5s} #{c.arch_index}: archsearch {statistics.median(ours):7.1f} ms, plain "
            f"{TRIAL_THREADS}t{' cl' if cl else ''} {statistics.median(plain):7.1f} ms, ratio {ratio:.2f} "
            f"({', '.join(f'{o / p:.2f}' for o, p in zip(ours, plain))})")
    return rows


def paired_table(rows: list[dict[str, Any]], title: str) -> str:
    lines = [f"**{title}**", "", "| space | input | archsearch ms/step (median) | plain, same setting (median) | "
             "archsearch / plain (median of repetitions) |", "|---|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['space']} | {r['size']} | {statistics.median(r['archsearch_ms']):.1f} | "
                     f"{statistics.median(r['plain_ms']):.1f} | {r['ratio']:.2f} |")
    return "\n".join(lines)


def table(rows: list[dict[str, Any]], title: str) -> str:
    threads = f"{TRIAL_THREADS} thread{'s' * (TRIAL_THREADS > 1)}"
    lines = [f"**{title}**", "", f"| space | input | archsearch ms/step ({threads}) | best plain setting | "
             "its ms/step | archsearch / best | best plain at archsearch's threads | its ms/step | archsearch / it |",
             "|---|---|---:|---|---:|---:|---|---:|---:|"]
    by: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        by.setdefault((r["space"], r["size"]), []).append(r)
    for (space, size), rs in by.items():
        ours = [r["archsearch_ms"] for r in rs]
        best = [r["best_ms"] for r in rs]
        settings = sorted({r["best"] for r in rs})
        same = [min((k for k in r["grid_ms"] if k.startswith(f"{TRIAL_THREADS}t")), key=r["grid_ms"].get) for r in rs]
        same_ms = [r["grid_ms"][k] for r, k in zip(rs, same)]
        ratio = [o / b for o, b in zip(ours, best)]
        ratio_same = [o / b for o, b in zip(ours, same_ms)]
        lines.append(f"| {space} | {size} | {np.mean(ours):.1f} | {', '.join(settings)} | {np.mean(best):.1f} | "
                     f"{np.mean(ratio):.2f} | {', '.join(sorted(set(same)))} | {np.mean(same_ms):.1f} | "
                     f"{np.mean(ratio_same):.2f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spaces", nargs="+", default=SPACES, choices=SPACES)
    ap.add_argument("--sizes", nargs="+", default=["32", "28"], choices=["32", "28"])
    ap.add_argument("--archs", type=int, default=2, help="architectures sampled per space")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=10, help="a trial's epochs, to judge whether compiling pays")
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--no-idle", action="store_true")
    ap.add_argument("--no-load", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    ap.add_argument("--paired", type=int, default=0, metavar="R",
                    help="only archsearch against the plain step at its own setting, alternately R times")
    ap.add_argument("--tables", default=None, metavar="JSON", help="only print the tables of an earlier --json")
    args = ap.parse_args()
    if args.tables:
        return tables(args.tables)
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    cs = cases(args.spaces, args.sizes, args.archs, args.batch, args.seed)
    out: dict[str, Any] = {"cores": os.cpu_count(), "torch": torch.__version__, "default_threads": DEFAULT_THREADS}
    if args.paired:
        for load in ([] if args.no_idle else ["idle"]) + ([] if args.no_load else ["loaded"]):
            log(f"{load}, paired:")
            with background_load(load == "loaded", threads=os.cpu_count() or 1):
                out[load] = paired(cs, args.steps, args.warmup, args.paired, log)
            print(paired_table(out[load], load), "\n", flush=True)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(out, f, indent=1)
        return
    if not args.no_idle:
        log("idle:")
        out["idle"] = measure(cs, args.steps, args.warmup, not args.no_compile, args.epochs, log)
        print(table(out["idle"], "idle"), "\n", flush=True)
    if not args.no_load:
        log("loaded:")
        with background_load(True, threads=os.cpu_count() or 1):
            out["loaded"] = measure(cs, args.steps, args.warmup, not args.no_compile, args.epochs, log)
        print(table(out["loaded"], f"a second process loading all {os.cpu_count()} cores"), "\n", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


def tables(path: str) -> None:
    """The tables again from a ``--json`` file (``python benchmarks/throughput.py --tables FILE``)."""
    with open(path) as f:
        out = json.load(f)
    for key, title in (("idle", "idle"), ("loaded", f"a second process loading all {out['cores']} cores")):
        if key in out:
            print(table(out[key], title), "\n")


if __name__ == "__main__":
    main()
