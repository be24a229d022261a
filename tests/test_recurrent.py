"""Recurrent-cell search (issue 11): text corpora, the DARTS / ENAS recurrent-cell spaces, their supernet, DARTS
and ENAS searching them, perplexity. Everything on a tiny generated corpus; nothing downloads."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from archsearch.errors import UserError
from archsearch.evaluators.training import TrainingEvaluator
from archsearch.objective import parse_objective
from archsearch.result import Result
from archsearch.space import Architecture
from archsearch.spaces import get_space
from archsearch.spaces.rnn import TEXT_SPACES, in_label
from archsearch.strategies.oneshot import make_oneshot
from archsearch.strategies.oneshot.rnn_supernet import OPS, edge_label
from archsearch.strategies.oneshot.supernet import build_supernet
from archsearch.datasets.text import EOS, UNK, TextDataset, load_corpus, perplexity, write_toy_corpus

SMALL = {"emb": 8, "hidden": 8, "nodes": 4}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_toy_corpus(tmp_path_factory.mktemp("corpus"), sentences=120, seed=0)


@pytest.fixture(scope="module")
def data(corpus):
    return load_corpus(corpus, bptt=8)


def small(name="rnn"):
    return get_space(name, **SMALL)


# --- corpora ------------------------------------------------------------------------------------------------------
def test_corpus_windows_are_next_word_targets_in_the_ptb_layout(tmp_path):
    (tmp_path / "train.txt").write_text("a b c\nb c a\n" * 5)
    (tmp_path / "valid.txt").write_text("a b d\n" * 3)
    (tmp_path / "test.txt").write_text("c b a\n" * 3)
    d = load_corpus(tmp_path, bptt=4)
    assert isinstance(d, TextDataset) and d.vocab == sorted({"a", "b", "c", EOS, UNK})
    assert d.shape.num_classes == 5 and d.shape.width == 4 and d.x_train.shape == (9, 4)
    words = [d.vocab[i] for i in d.x_train[0]]
    assert words == ["a", "b", "c", EOS]
    assert torch.equal(d.y_train.flatten()[:-1], d.x_train.flatten()[1:])  # y is x shifted by one token
    assert d.vocab[int(d.x_val[0, 2])] == UNK  # 'd' is not in the training split


def test_a_bad_corpus_is_a_one_line_user_error(tmp_path):
    with pytest.raises(UserError, match="valid.txt"):
        (tmp_path / "train.txt").write_text("a b\n")
        load_corpus(tmp_path)
    with pytest.raises(UserError, match="not a folder"):
        load_corpus(tmp_path / "nope")


def test_perplexity_of_a_uniform_model_is_the_vocabulary_size(data):
    class Uniform(nn.Module):
        def __init__(self):
            super().__init__()
            self.p = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return torch.zeros(x.shape[0], data.num_classes, x.shape[1]) * self.p

    assert perplexity(Uniform(), data.x_val, data.y_val) == pytest.approx(data.num_classes, rel=1e-5)


# --- spaces -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", TEXT_SPACES)
def test_recurrent_spaces_build_language_models_and_round_trip(name, data):
    space, rng = small(name), np.random.default_rng(0)
    assert {d.label for d in space.decisions} == {f"node{i}_{k}" for i in (1, 2, 3) for k in ("in", "act")}
    for _ in range(3):
        arch = space.sample(rng)
        out = space.build(arch, data.shape)(data.x_train[:2])
        assert out.shape == (2, data.num_classes, data.shape.width)
        assert Architecture.from_json(json.loads(arch.to_json())) == arch
        assert space.format(arch).startswith("recurrent=[") and space.contains(space.mutate(arch, rng))


def test_enas_cell_averages_the_loose_ends_and_darts_cell_every_node(data):
    arch = Architecture({in_label(1): (0,), in_label(2): (1,), in_label(3): (1,), "node1_act": "tanh",
                         "node2_act": "relu", "node3_act": "identity"})
    assert small("enas-rnn").build(arch, data.shape).cell.out_nodes() == [2, 3]
    assert small("rnn").build(arch, data.shape).cell.out_nodes() == [1, 2, 3]


def test_image_data_gets_a_clear_error(data):
    model = small().build(small().sample(np.random.default_rng(0)), data.shape)
    with pytest.raises(ValueError, match="model text"):
        model(torch.randn(2, 3, 8, 8))
    from archsearch.datasets import load_digits
    with pytest.raises(UserError, match="model text"):
        make_oneshot("darts", small(), load_digits(), 1)


# --- supernet -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", TEXT_SPACES)
def test_a_single_path_of_the_supernet_is_the_fixed_cell_with_shared_weights(name, data):
    space = small(name)
    sn = build_supernet(space, data.shape, seed=0)
    arch = space.sample(np.random.default_rng(3))
    fixed = space.build(arch, data.shape)
    own = fixed.state_dict()
    shared = {k: v for k, v in sn.model.state_dict().items() if k in own}
    assert set(shared) == set(own)
    fixed.load_state_dict(shared)
    sn.state.set("path", sn.path_of(arch))
    sn.model.eval(), fixed.eval()
    x = data.x_val[:3]
    assert torch.allclose(sn.model(x), fixed(x), atol=1e-6)


def test_the_vectorised_darts_relaxation_equals_the_sum_of_mixed_ops(data):
    sn = build_supernet(small(), data.shape, seed=0)
    with torch.no_grad():
        for a in sn.alphas.parameters():
            a.normal_()
    sn.model.eval()
    sn.state.set("softmax")
    fast = sn.model(data.x_val[:3])
    sn.model.cell.begin = lambda: setattr(sn.model.cell, "_weights", None)  # force the per-edge MixedOp path
    assert torch.allclose(fast, sn.model(data.x_val[:3]), atol=1e-5)


def test_derive_keeps_each_nodes_strongest_edge_and_activation(data):
    sn = build_supernet(small(), data.shape, seed=0)
    want = {1: (0, "relu"), 2: (0, "sigmoid"), 3: (2, "identity")}
    with torch.no_grad():
        for i, (j, act) in want.items():
            sn.alphas[edge_label(i, j)][OPS.index(act)] = 5.0
        sn.alphas[edge_label(3, 0)][OPS.index("none")] = 9.0  # 'none' is never derived
    arch = sn.derive()
    assert {i: (arch[f"node{i}_in"][0], arch[f"node{i}_act"]) for i in want} == want


@pytest.mark.parametrize("strategy, space", [("darts", "rnn"), ("enas", "rnn"), ("enas", "enas-rnn"),
                                             ("gdas", "rnn")])
def test_darts_and_enas_search_the_recurrent_space(strategy, space, data):
    opts = {"controller_steps": 2, "derive_samples": 2} if strategy == "enas" else {}
    s = make_oneshot(strategy, small(space), data, 1, seed=0, batch_size=16, bn_batches=1, w_lr=0.5, **opts)
    m = s.run_epoch()
    assert math.isfinite(m["train_loss"]) and 0 <= m["val_accuracy"] <= 100
    assert s.space.contains(s.derive())


def test_darts_search_moves_alpha_and_is_reproducible(data):
    runs = []
    for _ in range(2):
        s = make_oneshot("darts", small(), data, 1, seed=1, batch_size=16, w_lr=0.5, alpha_lr=3e-3)
        a0 = {k: v.detach().clone() for k, v in s.supernet.alphas.tensors.items()}
        s.run_epoch()
        assert any(not torch.equal(a0[k], v.detach()) for k, v in s.supernet.alphas.tensors.items())
        runs.append(s.derive())
    assert runs[0] == runs[1]


# --- evaluation ---------------------------------------------------------------------------------------------------
def test_training_evaluator_reports_perplexity_and_the_objective_minimises_it(corpus):
    space = get_space("rnn", **SMALL)
    ev = TrainingEvaluator(space, data=str(corpus), epochs=1, batch_size=16, optimizer="adam", lr=3e-3)
    r = ev.evaluate(space.sample(np.random.default_rng(0)), seed=0)
    assert r.ok, r.error
    vocab = ev.data.num_classes
    assert 1 < r.metrics["val_perplexity"] < vocab and 1 < r.metrics["test_perplexity"] < vocab
    assert 0 <= r.metrics["val_accuracy"] <= 100 and r.metrics["params"] > 0
    obj = parse_objective("min:val_perplexity")
    better, worse = (obj.score(Result({"val_perplexity": p})).value for p in (20.0, 30.0))
    assert better > worse


def test_a_one_shot_run_on_a_text_folder_minimises_perplexity(corpus, tmp_path):
    from archsearch.oneshot_study import OneShotStudy
    study = OneShotStudy.create(space="rnn", strategy="darts", epochs=1, space_config=SMALL,
                                strategy_options={"batch_size": 16, "w_lr": 0.5}, data=str(corpus),
                                evaluator_options={"data": str(corpus), "epochs": 1, "batch_size": 16,
                                                   "optimizer": "adam", "lr": 3e-3},
                                objective=parse_objective("min:val_perplexity"), run_dir=tmp_path / "run")
    summary = study.run()
    best = json.loads((tmp_path / "run" / "best.json").read_text())
    assert summary.best is not None and best["value"] == pytest.approx(-best["metrics"]["val_perplexity"])
    assert best["text"].startswith("recurrent=[")
