"""Peak memory of one search step: ProxylessNAS vs. DARTS on the same 8-candidate supernet (issue 5).

The supernet: the ``cell`` space's DARTS supernet (every edge of every cell a mixed op of the 8 DARTS primitives,
'none' included). A DARTS step is an α step on a validation batch plus a w step on a training batch, each through
all 8 candidates of every edge; a ProxylessNAS step is a w step through one sampled path plus a binarised α step
through two (the inactive one without autograd).

Each measurement runs in a fresh process, after two warm-up steps (so that optimiser state, gradient buffers and
the allocator are in their steady state), and reports two numbers for the steps that follow:

* ``profiler``: torch.profiler's memory accounting (``profile_memory=True``): each op's own allocations minus
  frees, and the frees outside ops, summed in time order; the peak of that running sum is the step's peak memory
  above what was live when it started (tensors only: activations saved for backward, gradients, temporaries;
  a transient peak inside one op counts at its net value);
* ``rss``: the process's peak resident memory during the step (VmHWM, reset through /proc/self/clear_refs before
  the step) minus its resident memory before it, with glibc told to serve every block over 64 KiB by mmap
  (MALLOC_MMAP_THRESHOLD_) so that freed tensors leave the resident set.

    python benchmarks/oneshot_memory.py [--channels 16] [--layers 5] [--nodes 4] [--batch-size 64] [--size 32]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

STRATEGIES = ("darts", "proxyless")


def child(args) -> dict:
    import numpy as np
    import torch

    from archsearch.datasets import make_dataset
    from archsearch.spaces import get_space
    from archsearch.strategies.oneshot import make_oneshot

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    n, s = 4 * args.batch_size, args.size
    x = rng.standard_normal((n, args.in_channels, s, s)).astype(np.float32)
    y = rng.integers(0, 10, n)
    data = make_dataset("synthetic", x, y, x, y, x[:2], y[:2])
    space = get_space("cell", channels=args.channels, layers=args.layers, nodes=args.nodes)
    st = make_oneshot(args.child, space, data, epochs=1, seed=0, batch_size=args.batch_size)
    assert all(len(st.supernet.options(k)) == 8 for k in st.supernet.alphas.labels)
    st.model.train()
    bs = args.batch_size
    batches = [(data.x_train[i * bs:(i + 1) * bs], data.y_train[i * bs:(i + 1) * bs]) for i in range(4)]

    def step(i):
        (xt, yt), (xv, yv) = batches[i % 4], batches[(i + 1) % 4]
        st.step(xt, yt, xv, yv)

    for i in range(2):
        step(i)
    prof_peaks, rss_peaks = [], []
    for i in range(2, 2 + args.steps):
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as prof:
            step(i)
        # every op's own allocations minus frees, and the frees outside ops ("[memory]"), in time order
        events = sorted((e for e in prof.events() if e.self_cpu_memory_usage), key=lambda e: e.time_range.start)
        live = peak = 0
        for e in events:
            live += e.self_cpu_memory_usage
            peak = max(peak, live)
        prof_peaks.append(peak)
        before = _status("VmRSS")
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current resident size
        step(i + args.steps)
        rss_peaks.append(_status("VmHWM") - before)
    return {"profiler_peak_mb": max(prof_peaks) / 2 ** 20, "rss_peak_mb": max(rss_peaks) / 2 ** 20,
            "weights_mb": sum(p.numel() * 4 for p in st.supernet.weights()) / 2 ** 20}


def _status(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--layers", type=int, default=5)
    ap.add_argument("--nodes", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--size", type=int, default=32, help="input height and width (synthetic data)")
    ap.add_argument("--in-channels", type=int, default=3)
    ap.add_argument("--steps", type=int, default=3, help="measured steps (the maximum is reported)")
    ap.add_argument("--child", choices=STRATEGIES, help=argparse.SUPPRESS)
    ap.add_argument("--json")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "OMP_NUM_THREADS": "1"}
    res = {}
    for name in STRATEGIES:
        cmd = [sys.executable, __file__, "--child", name] + [a for a in sys.argv[1:] if a != "--json" and
                                                             not a.endswith(".json")]
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
        res[name] = json.loads(out.stdout.strip().splitlines()[-1])
    res["ratio_profiler"] = res["proxyless"]["profiler_peak_mb"] / res["darts"]["profiler_peak_mb"]
    res["ratio_rss"] = res["proxyless"]["rss_peak_mb"] / res["darts"]["rss_peak_mb"]
    res["config"] = {k: v for k, v in vars(args).items() if k not in ("child", "json")}
    print(json.dumps(res, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
