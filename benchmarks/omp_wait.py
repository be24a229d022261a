"""Does OpenMP's wait policy explain the collapse of multi-threaded training beside a busy process (issue 22)?

PyTorch's CPU build runs its intra-op threads on GNU OpenMP, whose idle threads spin before they sleep
(``OMP_WAIT_POLICY`` unset: active for a while; ``PASSIVE``: sleep at once). Beside another process that keeps
every core busy, spinning threads take CPU from the threads doing the work. This probe times one training step
(forward + backward + SGD, batch 64) of a plain CNN on 1x28x28 inputs and of a sampled nb201 cell network
(3x32x32, many small ops in parallel branches), in a fresh process per condition (the policy is read when
OpenMP starts), at 2 threads with the policy unset and PASSIVE, and at 1 thread, on an idle machine and beside
a 2-thread matmul loop (started with the default environment), alternating the conditions in each repetition.

    python benchmarks/omp_wait.py --repeats 3 --steps 20
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

from trial_parallelism import background_load  # (benchmarks/, beside this script)

CHILD = r"""
import json, sys, time, torch
from torch import nn
torch.set_num_threads(int(sys.argv[1]))
model_kind, steps = sys.argv[2], int(sys.argv[3])
torch.manual_seed(0)
if model_kind == "cnn":
    def c(i, o):
        return nn.Sequential(nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU())
    model = nn.Sequential(c(1, 32), c(32, 32), nn.MaxPool2d(2), c(32, 64), c(64, 64), nn.MaxPool2d(2),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)).to(memory_format=torch.channels_last)
    x = torch.randn(64, 1, 28, 28).to(memory_format=torch.channels_last)
else:  # an nb201 cell network (many small ops in parallel branches, as a supernet's mixed edges are)
    import numpy as np
    from archsearch.space import InputShape
    from archsearch.spaces import get_space
    sp = get_space("nb201")
    model = sp.build(sp.sample(np.random.default_rng(0)), InputShape(3, 32, 32, 10))
    model = model.to(memory_format=torch.channels_last)
    x = torch.randn(64, 3, 32, 32).to(memory_format=torch.channels_last)
y = torch.randint(0, 10, (64,))
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
def step():
    opt.zero_grad()
    out = model(x)
    out = out[0] if isinstance(out, (tuple, list)) else out
    nn.functional.cross_entropy(out, y).backward()
    opt.step()
for _ in range(3):
    step()
ts = []
for _ in range(steps):
    t = time.perf_counter(); step(); ts.append(time.perf_counter() - t)
ts.sort()
print(json.dumps({"ms": 1000 * ts[len(ts) // 2]}))
"""

def child(threads: int, policy: str | None, kind: str, steps: int) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    out = subprocess.run([sys.executable, "-c", CHILD, str(threads), kind, str(steps)], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["ms"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--models", nargs="+", default=["cnn", "nb201"])
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    conditions = [(2, None), (2, "PASSIVE"), (1, None)]
    os.environ.pop("OMP_WAIT_POLICY", None)  # the load runs with the default policy; each child gets its own
    rows = []
    for load in ("idle", "loaded"):
        with background_load(load == "loaded"):
            for rep in range(a.repeats):
                for kind in a.models:
                    for threads, policy in conditions:
                        ms = child(threads, policy, kind, a.steps)
                        rows.append({"load": load, "model": kind, "threads": threads, "policy": policy or "unset",
                                     "rep": rep, "ms": ms, "loadavg": os.getloadavg()[0]})
                        print(json.dumps(rows[-1]), flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    print("\n| model | setting | idle ms/step | loaded ms/step | loaded / idle |")
    print("|---|---|---:|---:|---:|")
    for kind in a.models:
        for threads, policy in conditions:
            med = {ld: statistics.median(r["ms"] for r in rows if r["load"] == ld and r["model"] == kind and
                                         r["threads"] == threads and r["policy"] == (policy or "unset"))
                   for ld in ("idle", "loaded")}
            print(f"| {kind} | {threads} thread(s), OMP_WAIT_POLICY {policy or 'unset'} | {med['idle']:.1f} | "
                  f"{med['loaded']:.1f} | {med['loaded'] / med['idle']:.2f} |")


if __name__ == "__main__":
    main()
