"""First-order DARTS: time per search batch of archsearch's supernet vs. a minimal direct PyTorch implementation of
the same supernet (issue 5).

The direct implementation below is written the way pt.darts / the DARTS reference code is: α as two (edges x ops)
tensors, one softmax per cell type per forward, a MixedOp that sums ``w * op(x)`` over all its ops, a cell that sums
its incoming edges, and a first-order step that is ``loss.backward()`` + Adam for α on a validation batch, then
``loss.backward()`` + clipped SGD for w on a training batch. Both networks use the same ops (archsearch.ops, BN
without affine, a BN after pooling), the same shape (stem, cells, reductions, classifier) and the same
optimisers; their parameter counts are checked equal. Batches alternate between the two implementations (A B A B
...) so that a change of machine load hits both; the median time per batch is reported.

    python benchmarks/oneshot_speed.py [--threads 1] [--batches 20] [--channels 16] [--layers 5] [--nodes 4]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.datasets import load_data
from archsearch.ops import CELL_OPS, DARTS_PRIMITIVES, FactorizedReduce, ReLUConvBN
from archsearch.spaces import get_space
from archsearch.strategies.oneshot import make_oneshot


# ---- the minimal direct implementation (pt.darts's model_search.py, condensed) ---------------------------------
class DirectMixedOp(nn.Module):
    def __init__(self, c: int, stride: int):
        super().__init__()
        self.ops = nn.ModuleList()
        for name in DARTS_PRIMITIVES:
            op = CELL_OPS[name](c, stride, False)
            self.ops.append(nn.Sequential(op, nn.BatchNorm2d(c, affine=False)) if "pool" in name else op)

    def forward(self, x, weights):
        return sum(w * op(x) for w, op in zip(weights, self.ops))


class DirectCell(nn.Module):
    def __init__(self, steps, c_pp, c_p, c, reduction, reduction_prev):
        super().__init__()
        self.reduction, self.steps = reduction, steps
        self.pre0 = FactorizedReduce(c_pp, c, False) if reduction_prev else ReLUConvBN(c_pp, c, 1, affine=False)
        self.pre1 = ReLUConvBN(c_p, c, 1, affine=False)
        self.ops = nn.ModuleList(DirectMixedOp(c, 2 if reduction and j < 2 else 1)
                                 for i in range(steps) for j in range(2 + i))

    def forward(self, s0, s1, weights):
        states, offset = [self.pre0(s0), self.pre1(s1)], 0
        for i in range(self.steps):
            s = sum(self.ops[offset + j](h, weights[offset + j]) for j, h in enumerate(states))
            offset += len(states)
            states.append(s)
        return torch.cat(states[2:], dim=1)


class DirectNetwork(nn.Module):
    def __init__(self, c_in, c, num_classes, layers, steps, stem_multiplier=3):
        super().__init__()
        c_stem = stem_multiplier * c
        self.stem = nn.Sequential(nn.Conv2d(c_in, c_stem, 3, padding=1, bias=False), nn.BatchNorm2d(c_stem))
        c_pp, c_p, c_cur, reduction_prev = c_stem, c_stem, c, False
        self.cells = nn.ModuleList()
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c_cur *= 2
            self.cells.append(DirectCell(steps, c_pp, c_p, c_cur, reduction, reduction_prev))
            reduction_prev = reduction
            c_pp, c_p = c_p, steps * c_cur
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_classes)
        k = sum(2 + i for i in range(steps))
        self.alphas_normal = (1e-3 * torch.randn(k, len(DARTS_PRIMITIVES))).requires_grad_(True)
        self.alphas_reduce = (1e-3 * torch.randn(k, len(DARTS_PRIMITIVES))).requires_grad_(True)

    def forward(self, x):
        s0 = s1 = self.stem(x)
        w_normal, w_reduce = F.softmax(self.alphas_normal, -1), F.softmax(self.alphas_reduce, -1)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, w_reduce if cell.reduction else w_normal)
        return self.classifier(torch.flatten(self.pool(s1), 1))


class DirectDARTS:
    """First-order DARTS on the direct network, with the same optimisers as archsearch's DARTS."""

    def __init__(self, net: DirectNetwork):
        self.net = net
        self.w_opt = torch.optim.SGD(net.parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
        self.a_opt = torch.optim.Adam([net.alphas_normal, net.alphas_reduce], lr=3e-4, betas=(0.5, 0.999),
                                      weight_decay=1e-3)

    def step(self, xt, yt, xv, yv):
        self.a_opt.zero_grad()
        F.cross_entropy(self.net(xv), yv).backward()
        self.a_opt.step()
        self.w_opt.zero_grad()
        loss = F.cross_entropy(self.net(xt), yt)
        loss.backward()
        nn.utils.clip_grad_norm_(self.net.parameters(), 5.0)
        self.w_opt.step()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--layers", type=int, default=5)
    ap.add_argument("--nodes", type=int, default=4)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load0 = os.getloadavg()[0]
    data = load_data("digits")
    space = get_space("cell", channels=args.channels, layers=args.layers, nodes=args.nodes)
    ours = make_oneshot("darts", space, data, epochs=1, seed=0, batch_size=args.batch_size)
    ours.model.train()
    torch.manual_seed(0)
    direct = DirectNetwork(1, args.channels, 10, args.layers, args.nodes)
    n_ours = sum(p.numel() for p in ours.supernet.weights())
    n_direct = sum(p.numel() for p in direct.parameters())
    assert n_ours == n_direct, (n_ours, n_direct)
    ddarts = DirectDARTS(direct.train())
    gen = torch.Generator().manual_seed(0)
    bs = args.batch_size

    def batch(x, y):
        idx = torch.randperm(len(y), generator=gen)[:bs]
        return x[idx], y[idx]

    times: dict[str, list[float]] = {"archsearch": [], "direct": []}
    for i in range(args.batches + 2):  # two warm-up batches each
        xt, yt = batch(data.x_train, data.y_train)
        xv, yv = batch(data.x_val, data.y_val)
        for name in (("archsearch", "direct") if i % 2 == 0 else ("direct", "archsearch")):
            t = time.perf_counter()
            if name == "archsearch":
                ours.step(xt, yt, xv, yv)
            else:
                ddarts.step(xt, yt, xv, yv)
            if i >= 2:
                times[name].append(time.perf_counter() - t)
    res = {k: {"median_ms": 1000 * statistics.median(v), "mean_ms": 1000 * statistics.fmean(v),
               "min_ms": 1000 * min(v)} for k, v in times.items()}
    res["ratio_median"] = res["archsearch"]["median_ms"] / res["direct"]["median_ms"]
    res["config"] = {**vars(args), "params": n_ours, "load1_start": load0, "load1_end": os.getloadavg()[0],
                     "torch": torch.__version__}
    print(json.dumps(res, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
