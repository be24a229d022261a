"""Where the rnn space's training step goes (issue 22: the paired throughput run had archsearch's Trainer 1.41x
the plain step on the rnn case): the plain step of benchmarks/throughput.py's rnn case (one thread, batch 64,
windows of 35 tokens, 1,000-word vocabulary), then with the Trainer's recipe added piece by piece — weight decay
3e-4 and Nesterov, gradient clipping at 5, the finite-loss check — and the Trainer itself; median ms over 30
steps after 3, repeated.

    python benchmarks/rnn_step_probe.py --repeats 3
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import throughput as T  # noqa: E402

VARIANTS = ["plain", "wd", "wd+clip", "wd+clip+finite"]


def step_ms(case: T.Case, variant: str, steps: int, warmup: int) -> float:
    torch.manual_seed(0)
    model = case.model_fn()
    model.train()
    wd = "wd" in variant
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=wd, weight_decay=3e-4 if wd else 0.0)
    times = []
    for k in range(warmup + steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = T._loss(model, case.x, case.y)
        if "finite" in variant and not torch.isfinite(loss):
            raise SystemExit("the loss diverged")
        loss.backward()
        if "clip" in variant:
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        if k >= warmup:
            times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=30)
    args = ap.parse_args()
    torch.set_num_threads(1)
    case = T.cases(["rnn"], ["32"], 1, 64, 0)[0]
    for rep in range(args.repeats):
        row = {v: step_ms(case, v, args.steps, 3) for v in VARIANTS}
        row["trainer"] = T.archsearch_step_ms(case, args.steps, 3)
        print(f"rep {rep}: " + ", ".join(f"{k} {v:.1f} ms" for k, v in row.items())
              + f"; trainer / plain {row['trainer'] / row['plain']:.2f}", flush=True)


if __name__ == "__main__":
    main()
