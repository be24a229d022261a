"""FBNet (Wu et al., CVPR 2019) on the MBConv space: Gumbel-softmax supernet plus the latency-table loss."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from archsearch.datasets import make_dataset
from archsearch.errors import UserError
from archsearch.hardware.latency_table import LatencyTable, space_units
from archsearch.spaces import get_space

oneshot = pytest.importorskip("archsearch.strategies.oneshot")

OP_SPACE = {"block_choice": "op", "widths": [[8], [16], [16]], "depths": [[1], [1, 2], [1, 2]], "strides": [1, 2, 2],
            "kernels": [3, 5], "expand_ratios": [1, 6], "se": [False], "activations": ["relu"], "stem_channels": 8,
            "head_channels": 16, "feature_channels": 16, "stem_stride": 1, "dropout": 0.0}


@pytest.fixture(scope="module")
def data():
    from sklearn.datasets import load_digits
    d = load_digits()
    x, y = (d.images[:240] / 16.0).astype(np.float32)[:, None], d.target[:240].astype(np.int64)
    return make_dataset("tiny", x[:160], y[:160], x[160:200], y[160:200], x[200:], y[200:])


def synthetic_table(space, shape, path):
    """Deterministic latencies: a block costs (hidden channels x kernel^2) / 100 ms, skip almost nothing."""
    entries = {}
    for key, _, _ in space_units(space, shape):
        m = re.search(r"k=(\d+),hidden=(\d+)", key)
        entries[key] = int(m[2]) * int(m[1]) ** 2 / 100 if m else (0.001 if key.startswith("skip") else 0.5)
    table = LatencyTable(entries, {"space": {"name": space.name, "config": space.config},
                                   "input": list(shape.size)})
    table.save(path)
    return table


def test_fbnet_latency_gradient_favours_cheaper_candidates(data, tmp_path):
    """d LAT / d theta_i = m_i (c_i - sum_j m_j c_j) / tau for LAT = sum_j m_j c_j and m the Gumbel-softmax sample:
    gradient descent on the latency term moves probability from costlier to cheaper candidates of every layer."""
    space = get_space("mbconv", **OP_SPACE)
    synthetic_table(space, data.shape, tmp_path / "table.json")
    s = oneshot.make_oneshot("fbnet", space, data, 2, seed=0, latency_table=str(tmp_path / "table.json"),
                             batch_size=32, bn_batches=1)
    s.sample_gates()
    labels = list(s.latency_costs)
    grads = torch.autograd.grad(s.sampled_latency(), [s.supernet.alphas[k] for k in labels])
    for label, g in zip(labels, grads):
        m, c = s.state.gates[label].detach(), s.latency_costs[label]
        assert torch.allclose(g, m * (c - (m * c).sum()) / s.tau, atol=1e-5)
    ce = float(s.loss(data.x_val[:32], data.y_val[:32]).detach())
    factor = s.opts.latency_alpha * float(torch.log(s.sampled_latency().detach())) ** s.opts.latency_beta
    assert float(s.alpha_loss(data.x_val[:32], data.y_val[:32]).detach()) == pytest.approx(ce * factor, rel=1e-4)


def test_fbnet_search_on_the_mbconv_space_with_a_latency_table(data, tmp_path):
    space = get_space("mbconv", **OP_SPACE)
    table = synthetic_table(space, data.shape, tmp_path / "table.json")
    s = oneshot.make_oneshot("fbnet", space, data, 2, seed=0, latency_table=str(tmp_path / "table.json"),
                             batch_size=32, bn_batches=1, alpha_lr=0.05, latency_beta=3.0)
    start = s.expected_latency()
    for _ in range(2):
        metrics = s.run_epoch()
    assert metrics["expected_latency_ms"] == pytest.approx(s.expected_latency())
    assert s.expected_latency() < start
    assert s.tau == pytest.approx(5.0 * np.exp(-0.045 * 2))
    arch = s.derive()
    assert space.contains(arch)
    # the term is the table's: fixed units plus the chosen candidates, for the one-hot sample of ``arch``
    s.state.gates = {k: torch.nn.functional.one_hot(torch.tensor(space.decision(k).options.index(arch[k])),
                                                    len(v)).float() for k, v in s.latency_costs.items()}
    assert float(s.sampled_latency()) == pytest.approx(table.predict(space, arch, data.shape))


def test_fbnet_refuses_a_table_of_another_input_size(data, tmp_path):
    space = get_space("mbconv", **OP_SPACE)
    other = make_dataset("big", *[np.zeros((4, 1, 16, 16), np.float32), np.arange(4) % 2] * 3)
    synthetic_table(space, other.shape, tmp_path / "t16.json")
    with pytest.raises(UserError, match="profiled at input"):
        oneshot.make_oneshot("fbnet", space, data, 1, latency_table=str(tmp_path / "t16.json"))
