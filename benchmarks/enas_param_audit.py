"""Does our ENAS network have the parameters ENAS's own code creates? (issue 9: `enas` counts 3.44M, the paper 4.6M.)

    python benchmarks/enas_param_audit.py

Two independent counts per cell, side by side: (1) ours, from the PyTorch model; (2) a shape-only walk of
melodyguan/enas ``MicroChild._model`` with a fixed arc (``src/cifar10/micro_child.py``), written from reading that
code: every trainable variable it makes is a ``create_weight`` shape or a ``batch_norm`` offset + scale, and
``count_model_params`` sums them over the child's variables without ``aux_head``. Then what-ifs that do not explain
the paper's 4.6M (auxiliary head, BatchNorm moving statistics, 3x3/5x5 swaps, the paper's Fig. 4 read literally).
No TensorFlow is run; a few seconds on one core.
"""
from __future__ import annotations

from math import prod

from torch import nn

from archsearch.genotypes import (ENAS, ENAS_ARC_OPS, ENAS_RELEASED_ARC, PAPER_EVALUATION, enas_arc_to_genotype,
    genotype_to_arch)
from archsearch.space import InputShape
from archsearch.spaces import get_space


class EnasCodeWalk:
    """Shapes of the variables ENAS's fixed-arc child creates, per layer (F filters, L normal layers + 2)."""

    def __init__(self, out_filters: int = 36, num_layers: int = 15, cells: int = 5):
        self.F, self.L, self.B = out_filters, num_layers, cells
        self.sizes: dict[str, int] = {}

    def var(self, where: str, *shape: int) -> None:
        self.sizes[where] = self.sizes.get(where, 0) + prod(shape)

    def conv_bn(self, where: str, c_in: int, c_out: int, k: int = 1) -> None:  # create_weight + batch_norm
        self.var(where, k, k, c_in, c_out)
        self.var(where, 2, c_out)

    def fact_reduce(self, where: str, c_in: int, c_out: int) -> None:  # _factorized_reduction, stride 2
        self.var(where, 2, c_in, c_out // 2)
        self.var(where, 2, c_out)

    def layer(self, where: str, prev: list[tuple[int, int]], arc: list[int], f: int, stride: int):
        (hw0, c0), (hw1, c1) = prev
        if hw0 != hw1:  # _maybe_calibrate_size: the older input at twice the resolution
            self.fact_reduce(where, c0, f)
        elif c0 != f:
            self.conv_bn(where, c0, f)
        if c1 != f:
            self.conv_bn(where, c1, f)
        self.conv_bn(where, f, f)  # layer_base
        hw = [hw1, hw1]
        used = [0] * (self.B + 2)
        for node in range(self.B):
            for src, op in ((arc[4 * node], arc[4 * node + 1]), (arc[4 * node + 2], arc[4 * node + 3])):
                used[src] += 1
                s = stride if src < 2 else 1
                if op in (0, 1):  # _fixed_conv: two ReLU-separable-BN, depthwise k x k, pointwise f -> f
                    k = (3, 5)[op]
                    for _ in range(2):
                        self.var(where, k, k, f)
                        self.conv_bn(where, f, f)
                elif op == 4 and s == 2:  # a strided identity (pools and identities read width-f states,
                    self.fact_reduce(where, f, f)  # so no 1x1 follows them)
            hw.append(hw1 // stride)  # every node of a reduction cell is at the reduced resolution
        loose = [i for i in range(self.B + 2) if used[i] == 0]
        out_hw = min(hw[i] for i in loose)
        for i in loose:  # _fixed_combine: a larger loose state is factorized-reduced
            if hw[i] > out_hw:
                self.fact_reduce(where, f, f)
        return out_hw, f * len(loose)

    def model(self, normal: list[int], reduce: list[int], aux: bool = True,
              pool: list[int] | None = None) -> list[tuple[int, int]]:
        """``pool``: the reduction layers (default the code's ``pool_layers``), ``L + 2`` layers in all."""
        self.conv_bn("stem", 3, 3 * self.F, 3)
        pool = pool or [self.L // 3, 2 * (self.L // 3) + 1]
        prev, f, outs = [(32, 3 * self.F)] * 2, self.F, []
        for i in range(self.L + 2):
            f *= 2 if i in pool else 1
            out = self.layer(f"cell {i}", prev, reduce if i in pool else normal, f, 2 if i in pool else 1)
            prev, outs = [prev[1], out], outs + [out]
            if aux and i == pool[-1] + 1:  # aux_head: 1x1 to 128 + BN, hw x hw to 768 + BN, bias-free fc
                hw = (out[0] - 5) // 3 + 1
                self.conv_bn("aux_head", out[1], 128)
                self.conv_bn("aux_head", 128, 768, hw)
                self.var("aux_head", 768, 10)
        self.var("classifier", prev[1][1], 10)
        return outs

    def count(self) -> int:
        return sum(v for k, v in self.sizes.items() if k != "aux_head")


def arc_of(genotype) -> list[int]:
    ids = []
    for edges in (genotype.normal, genotype.reduce):
        ids += [x for op, j in edges for x in (j, ENAS_ARC_OPS.index(op))]
    return ids


def ours(genotype, auxiliary: bool = True) -> nn.Module:
    config, arch = genotype_to_arch(genotype)
    space = get_space("cell", **{**PAPER_EVALUATION["enas"], **config, "auxiliary": auxiliary})
    return space.build(space.validate(arch), InputShape(3, 32, 32, 10))


def n(module: nn.Module | None) -> int:
    return sum(p.numel() for p in module.parameters()) if module is not None else 0


def walk(ids: list[int], pool: list[int] | None = None, **kw) -> EnasCodeWalk:
    w = EnasCodeWalk(**kw)
    w.model(ids[:20], ids[20:], aux=pool is None, pool=pool)
    return w


def swapped(ids: list[int], old: int, new: int) -> list[int]:
    """The arc with every op ``old`` made ``new`` (op ids sit at the odd positions)."""
    return [new if k % 2 and x == old else x for k, x in enumerate(ids)]


if __name__ == "__main__":
    released = enas_arc_to_genotype(ENAS_RELEASED_ARC)
    for name, genotype in (("paper's figure (`enas`)", ENAS), ("released arc", released)):
        model, code = ours(genotype), walk(arc_of(genotype))
        print(f"== {name}: ours {n(model) - n(model.auxiliary_head):,} (aux {n(model.auxiliary_head):,}); "
              f"ENAS's code {code.count():,} (aux {code.sizes['aux_head']:,})")
        print(f"   stem {n(model.stem):,} / {code.sizes['stem']:,}; classifier {n(model.classifier):,} / "
              f"{code.sizes['classifier']:,}")
        for i, cell in enumerate(model.cells):
            kind = "R" if cell.reduction else "N"
            print(f"   cell {i:2d} {kind} out {cell.out_channels:3d}: ours {n(cell):7,}  "
                  f"code {code.sizes[f'cell {i}']:7,}  (calibrate older {n(cell.pre0):,}, "
                  f"newer + layer_base {n(cell.pre1):,})")
        bn = sum(m.weight.numel() + m.bias.numel() for k, m in model.named_modules()
                 if isinstance(m, nn.BatchNorm2d) and not k.startswith("auxiliary"))  # as many moving stats
        print(f"   what-ifs: + aux head {code.count() + code.sizes['aux_head']:,}; + BN moving statistics "
              f"{code.count() + bn:,}")
    ids = arc_of(ENAS)
    print(f"paper's cell, every 3x3 separable conv a 5x5: {walk(swapped(ids, 0, 1)).count():,}; every 5x5 a 3x3: "
          f"{walk(swapped(ids, 1, 0)).count():,}")
    # the paper's Fig. 4 read literally: 3 blocks of N=5 normal cells + a reduction cell each (18 layers)
    fig4 = {name: walk(arc, pool=[5, 11, 17], num_layers=16).count()
            for name, arc in (("paper's cell", ids), ("released arc", arc_of(released)))}
    print("Fig. 4 literally (three reductions):", "; ".join(f"{k} {v:,}" for k, v in fig4.items()))
