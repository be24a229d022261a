"""The supernet: built for every space (built-in and a user's), each mode's forward and gradient, derivation."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from archsearch import InputShape, space_from_function
from archsearch.spaces import get_space, space_names
from archsearch.strategies.oneshot.cell_supernet import CellSupernet, edge_label
from archsearch.strategies.oneshot.latency_loss import as_cost_table, expected_cost, load_cost_table
from archsearch.strategies.oneshot.supernet import MixedOp, build_supernet, sigmoid_gates

SHAPE = InputShape(1, 8, 8, 10)
TINY = {
    "cell": {"channels": 4, "layers": 3, "nodes": 2},
    "nb201": {"channels": 4, "cells_per_stage": 1},
    "macro": {"layers": 3, "filters": [8, 12], "kernels": [3, 5]},
    "superkernel": {"layers": 3, "channels": 4, "max_kernel": 3},
    "mbconv": {"block_choice": "op", "widths": [[8], [8], [16]], "depths": [[1], [1, 2], [1]], "strides": [1, 2, 2],
               "kernels": [3, 5], "expand_ratios": [1, 3], "se": [False], "activations": ["relu"],
               "head_channels": 16, "feature_channels": 16, "stem_channels": 8},
}


def user_space(c, shape, width: int = 8):
    """A user's space: a value, an op choice, and a two-of-three input choice."""
    w = c.value("width", [4, width])
    stem = nn.Conv2d(shape.channels, w, 3, padding=1)
    ops = [c.layer(f"op{i}", {"conv3": lambda: nn.Conv2d(w, w, 3, padding=1), "conv1": lambda: nn.Conv2d(w, w, 1),
                              "pool": lambda: nn.MaxPool2d(3, 1, 1)}) for i in range(2)]
    pick = c.inputs("pick", 3, 2)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem, self.ops, self.pick = stem, nn.ModuleList(ops), pick
            self.head = nn.Linear(w, shape.num_classes)

        def forward(self, x):
            h0 = self.stem(x)
            h1 = self.ops[0](h0)
            h2 = self.ops[1](h1)
            states = [h0, h1, h2]
            h = self.pick([states[j] for j in self.pick.active_indices])
            return self.head(h.mean((2, 3)))

    return Net()


def spaces():
    from archsearch.spaces import SPACES
    from archsearch.spaces.rnn import TEXT_SPACES  # their supernets: tests/test_recurrent.py
    builtin = [n for n in space_names() if SPACES.get(n).fn.__module__.startswith("archsearch.spaces.")
               and n not in TEXT_SPACES]
    out = [pytest.param(get_space(n, **TINY.get(n, {})), id=n) for n in builtin]  # not other tests' spaces
    return out + [pytest.param(space_from_function(user_space, "mine"), id="user")]


@pytest.mark.parametrize("space", spaces())
def test_supernet_of_every_space_runs_every_mode_and_derives(space):
    sn = build_supernet(space, SHAPE, seed=0)
    x = torch.randn(4, *SHAPE.size)
    gen = torch.Generator().manual_seed(0)
    arch = sn.sample(np.random.default_rng(0))

    def gates(one_hot: bool):  # fresh sampled gates (with their own graph) for each mode
        return {k: (F.one_hot(torch.tensor(0), len(a)).float() if one_hot else torch.tensor([1.0, 0.0]))
                if sn.n_chosen(k) == 1 else sigmoid_gates(a, gen) for k, a in sn.alphas.tensors.items()}

    pairs = {k: (0, 1 % len(a)) for k, a in sn.alphas.tensors.items()}
    modes = {"softmax": lambda: ({}, {}), "path": lambda: (sn.path_of(arch), {}),
             "gumbel": lambda: ({}, gates(True)), "binary": lambda: (pairs, gates(False))}
    for mode, make in modes.items():
        sn.state.set(mode, *make())
        out = sn.model(x)
        out = out[0] if isinstance(out, tuple) else out
        assert out.shape == (4, SHAPE.num_classes), mode
        out.sum().backward()
    assert space.contains(sn.derive())
    assert space.contains(arch)


def test_values_are_fixed_to_the_largest_number_or_as_given():
    space = get_space("macro", **TINY["macro"])
    sn = build_supernet(space, SHAPE)
    assert sn.values == {f"l{i}_{k}": v for i in range(3) for k, v in (("kernel", 5), ("filters", 12))}
    assert all(sn.derive()[f"l{i}_filters"] == 12 for i in range(3))
    sn = build_supernet(space, SHAPE, fixed_values={"l0_kernel": 3})
    assert sn.values["l0_kernel"] == 3 and sn.derive()["l0_kernel"] == 3


def test_mixed_op_weighted_sum_and_skipped_zero_are_exact():
    space = get_space("nb201", **TINY["nb201"])
    sn = build_supernet(space, SHAPE)
    op = next(m for m in sn.model.modules() if isinstance(m, MixedOp))
    x = torch.randn(2, 4, 8, 8)
    sn.state.set("softmax")
    w = F.softmax(sn.alphas[op.label], 0)
    expected = sum(w[k] * op.candidates[k](x) for k in range(len(op.names)))  # 'none' included here
    assert torch.allclose(op(x), expected, atol=1e-6)
    g1 = torch.autograd.grad(op(x).square().sum(), sn.alphas[op.label])[0]
    g2 = torch.autograd.grad(expected.square().sum(), sn.alphas[op.label])[0]
    assert torch.allclose(g1, g2, atol=1e-5)


def test_gumbel_hard_forward_runs_one_candidate_and_is_one_hot():
    space = get_space("nb201", **TINY["nb201"])
    sn = build_supernet(space, SHAPE)
    op = next(m for m in sn.model.modules() if isinstance(m, MixedOp))
    calls = []
    for k, cand in enumerate(op.candidates):
        cand.register_forward_hook(lambda m, i, o, k=k: calls.append(k))
    a = sn.alphas[op.label]
    probs = F.softmax(a * 3, 0)
    h = F.one_hot(torch.tensor(2), len(a)).float() - probs.detach() + probs
    sn.state.set("gumbel", gates={op.label: h})
    x = torch.randn(2, 4, 8, 8)
    out = op(x)
    assert calls == [2]
    assert torch.allclose(out, op.candidates[2](x))
    (out.sum()).backward()
    assert a.grad is not None and a.grad.abs().sum() > 0


def test_binary_gates_give_proxylessnas_gradient():
    """∂L/∂α_i = Σ_j ∂L/∂g_j p_j (δ_ij − p_i) over the two sampled paths (Cai et al. 2019, eq. 4)."""
    space = get_space("nb201", **TINY["nb201"])
    sn = build_supernet(space, SHAPE)
    op = next(m for m in sn.model.modules() if isinstance(m, MixedOp))
    a = sn.alphas[op.label]
    with torch.no_grad():
        a.copy_(torch.tensor([0.3, -0.2, 0.5, 0.1, 0.0]))
    active, other = 3, 2
    p = F.softmax(a[[active, other]], 0)
    sn.state.set("binary", {op.label: (active, other)}, {op.label: torch.tensor([1.0, 0.0]) - p.detach() + p})
    x = torch.randn(2, 4, 8, 8)
    target = torch.randn(2, 4, 8, 8)
    loss = (op(x) - target).square().sum()
    loss.backward()
    o = [op.candidates[k](x).detach() for k in (active, other)]
    dL_dout = 2 * (o[0] - target)  # the output is the active path's
    dg = torch.stack([(dL_dout * oi).sum() for oi in o])
    pd = p.detach()
    expected = torch.zeros(5)
    for i, idx in enumerate((active, other)):
        expected[idx] = sum(dg[j] * pd[j] * (float(i == j) - pd[i]) for j in range(2))
    assert torch.allclose(a.grad, expected, rtol=1e-4, atol=1e-5)


def test_cell_supernet_has_every_edge_and_derives_top_two_without_none():
    space = get_space("cell", channels=4, layers=3, nodes=2, ops=["sep_conv_3x3", "max_pool_3x3"])
    sn = build_supernet(space, SHAPE)
    assert isinstance(sn, CellSupernet)
    assert sn.ops == ("none", "sep_conv_3x3", "max_pool_3x3")
    assert sorted(sn.alphas.labels) == sorted(edge_label(t, i, j) for t in ("normal", "reduce")
                                              for i in range(2) for j in range(i + 2))
    with torch.no_grad():
        for a in sn.alphas.parameters():
            a.zero_()
        sn.alphas[edge_label("normal", 1, 0)].copy_(torch.tensor([9.0, 0.0, 0.0]))  # 'none' wins: dropped
        sn.alphas[edge_label("normal", 1, 2)].copy_(torch.tensor([0.0, 2.0, 0.0]))
        sn.alphas[edge_label("normal", 1, 1)].copy_(torch.tensor([0.0, 0.0, 1.0]))
    arch = sn.derive()
    assert space.contains(arch)
    assert (arch["normal_n1_in0"], arch["normal_n1_op0"]) == ((2,), "sep_conv_3x3")
    assert (arch["normal_n1_in1"], arch["normal_n1_op1"]) == ((1,), "max_pool_3x3")
    path = sn.path_of(arch)
    assert path[edge_label("normal", 1, 2)] == (1,) and path[edge_label("normal", 1, 0)] == ()


def test_superkernel_candidates_are_crops_of_one_shared_kernel():
    space = get_space("superkernel", **TINY["superkernel"])
    sn = build_supernet(space, SHAPE)
    op = next(m for m in sn.model.modules() if isinstance(m, MixedOp))
    assert op.names[4] == "2x2" and len(op.names) == 9
    sk = op.candidates
    x = torch.randn(2, 4, 8, 8)
    sn.state.set("path", {op.label: (1,)})  # 1x2
    op(x).sum().backward()
    grad = sk.weight.grad.abs().sum((0, 1))
    assert (grad[1, :2] > 0).all() and grad.sum() == grad[1, :2].sum()  # only the centred 1x2 crop
    fixed = space.build(space.sample(np.random.default_rng(0)), SHAPE)
    assert sum(p.numel() for p in fixed.parameters()) < sum(p.numel() for p in sn.model.parameters())


def test_cost_tables_in_every_form_and_expected_cost_gradient():
    space = get_space("nb201", **TINY["nb201"])
    sn = build_supernet(space, SHAPE)
    label = sn.alphas.labels[0]
    forms = [{f"{label}/nor_conv_3x3": 2.0}, {(label, "nor_conv_3x3"): 2.0}, {label: {"nor_conv_3x3": 2.0}},
             lambda lbl, cand: 2.0 if (lbl, cand) == (label, "nor_conv_3x3") else None]
    for form in forms:
        assert as_cost_table(form)(label, "nor_conv_3x3") == 2.0
        assert as_cost_table(form)(label, "none") is None
    vectors = load_cost_table({"nor_conv_3x3": 2.0, "nor_conv_1x1": 1.0}, sn)
    assert set(vectors) == set(sn.alphas.labels)
    cost = expected_cost(sn, vectors)
    assert abs(float(cost.detach()) - 6 * 3.0 / 5) < 1e-3  # α ≈ 0: uniform probabilities
    cost.backward()
    g = sn.alphas[label].grad
    assert g[3] > g[2] > 0 > g[0]  # p_k (c_k - E[c]): descent pushes the costly ops down, the free ones up
