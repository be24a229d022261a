"""P-DARTS (stages, dropped candidates, skip dropout, at most M skips) and UNAS (REINFORCE on a black-box cost)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from archsearch.datasets import make_dataset
from archsearch.errors import UserError
from archsearch.spaces import get_space
from archsearch.strategies.oneshot import make_oneshot
from archsearch.strategies.oneshot.supernet import MixedOp

TINY = {"nb201": {"channels": 4, "cells_per_stage": 1}, "cell": {"channels": 4, "layers": 3, "nodes": 2}}
FAST = {"batch_size": 32, "bn_batches": 1}


@pytest.fixture(scope="module")
def data():
    from sklearn.datasets import load_digits
    d = load_digits()
    x, y = (d.images[:160] / 16.0).astype(np.float32)[:, None], d.target[:160].astype(np.int64)
    return make_dataset("tiny", x[:64], y[:64], x[64:112], y[64:112], x[112:], y[112:])


def make(name, data, space="nb201", epochs=1, **options):
    return make_oneshot(name, get_space(space, **TINY[space]), data, epochs, seed=0, **{**FAST, **options})


def n_mixed(s):
    return sum(isinstance(m, MixedOp) for m in s.model.modules())


# --- P-DARTS ------------------------------------------------------------------------------------------------------
def test_pdarts_grows_depth_and_drops_the_weakest_candidates_per_stage(data):
    s = make("pdarts", data, epochs=3, keep=(4, 2))
    sizes, kept = [], []
    for _ in range(3):
        s.train_epoch()
        sizes.append(n_mixed(s))
        kept.append({len(v) for v in s.kept.values()})
    assert s.stage == 2 and [s.depth(i) for i in range(3)] == [1, 2, 3]
    assert sizes[0] < sizes[1] < sizes[2]  # one more cell per stage and per resolution
    assert kept == [{5}, {4}, {2}]  # nb201: 5 candidates, then keep=(4, 2), 'none' always among them
    none = s.supernet.options("1<-0").index("none")
    assert all(none in v for v in s.kept.values())


def test_pdarts_drops_the_candidates_with_the_lowest_weights(data):
    s = make("pdarts", data, epochs=2, keep=(3,))
    with torch.no_grad():
        for a in s.supernet.alphas.parameters():
            a.copy_(torch.arange(len(a), dtype=a.dtype))  # the last candidates strongest
    s.drop_weakest()
    opts = s.supernet.options("1<-0")
    assert s.kept["1<-0"] == (0, len(opts) - 2, len(opts) - 1) and opts[0] == "none"


def test_pdarts_derives_at_most_m_skip_connections(data):
    def derive_with_skips_strongest(max_skip):
        s = make("pdarts", data, space="cell", max_skip=max_skip)
        skip = s.supernet.ops.index("skip_connect")
        with torch.no_grad():
            for a in s.supernet.alphas.parameters():
                a.zero_()
                a[skip] = 3.0 + float(torch.rand(1))
        arch = s.derive()
        assert s.space.contains(arch)
        return [arch[k] for k in arch if k.startswith("normal") and "_op" in k].count("skip_connect")

    assert derive_with_skips_strongest(max_skip=10) == 4  # 2 nodes x 2 inputs: all skips
    assert derive_with_skips_strongest(max_skip=2) == 2
    assert derive_with_skips_strongest(max_skip=0) == 0


def test_pdarts_drops_out_skip_connections_in_training_only(data):
    s = make("pdarts", data, skip_dropout=(0.5,))
    op = next(m for m in s.model.modules() if isinstance(m, MixedOp))
    k = op.names.index("skip_connect")
    x = torch.ones(4, 4, 8, 8)
    op.candidates[k].train()
    assert (op.candidates[k](x) == 0).float().mean() > 0.3
    op.candidates[k].eval()
    assert torch.equal(op.candidates[k](x), x)


def test_pdarts_resumes_in_the_stage_it_stopped(data):
    a = make("pdarts", data, epochs=2, keep=(3,))
    a.train_epoch()
    a.train_epoch()  # now in stage 2, candidates dropped
    b = make("pdarts", data, epochs=2, keep=(3,))
    b.load_state_dict(a.state_dict())
    assert b.stage == a.stage == 1 and b.kept == a.kept and n_mixed(b) == n_mixed(a)
    assert b.derive() == a.derive()


def test_pdarts_rejects_bad_options(data):
    with pytest.raises(UserError, match="keep"):
        make("pdarts", data, keep=(1,))
    with pytest.raises(UserError, match="depth_setting"):
        make("pdarts", data, depth_setting="nope")


# --- UNAS ---------------------------------------------------------------------------------------------------------
def test_unas_log_prob_gradient_is_the_score_function(data):
    s = make("unas", data)
    s.sample_gates()
    z = s.sample()
    s.log_prob(z).backward()
    for label, a in s.supernet.alphas.tensors.items():
        expected = F.one_hot(z[label], len(a)).float() - F.softmax(a.detach(), 0)
        assert torch.allclose(a.grad, expected, atol=1e-6)


def test_unas_cost_is_a_black_box_of_the_sampled_architecture(data):
    seen = []
    s = make("unas", data, latency_weight=1.0, cost_fn=lambda arch: seen.append(arch) or 1.0)
    s.sample_gates()
    z = s.sample()
    assert s.cost(z) == 1.0 and s.space.contains(seen[0])
    labels = s.supernet.alphas.labels
    assert [seen[0][k] for k in labels] == [s.supernet.options(k)[int(z[k])] for k in labels]


def prob_of(s, op):
    return float(np.mean([p[s.supernet.options(k).index(op)] for k, p in s.supernet.probabilities().items()]))


def test_unas_latency_term_moves_probability_away_from_costly_candidates(data):
    table = {"nor_conv_3x3": 10.0, "nor_conv_1x1": 4.0}
    runs = {}
    for lam in (0.0, 1.0):
        s = make("unas", data, epochs=2, latency_weight=lam, cost_table=table, alpha_lr=0.1, batch_size=8)
        s.train_epoch()
        s.train_epoch()
        runs[lam] = prob_of(s, "nor_conv_3x3")
    assert runs[1.0] < runs[0.0] - 0.05


def test_unas_measures_latency_once_per_architecture(data):
    s = make("unas", data, latency_weight=1.0, latency_repeats=3)
    s.sample_gates()
    z = s.sample()
    first = s.cost(z)
    assert first > 0 and len(s._latency_cache) == 1
    assert s.cost(z) == first and len(s._latency_cache) == 1


def test_unas_rejects_a_bad_latency_weight(data):
    with pytest.raises(UserError, match="latency_weight"):
        make("unas", data, latency_weight=-1)
