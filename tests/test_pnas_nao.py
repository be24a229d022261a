"""PNAS (progressive search with a surrogate ensemble) and NAO (encoder, predictor, decoder, gradient ascent)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from archsearch.result import Observation
from archsearch.spaces import get_space
from archsearch.strategies import make_strategy
from archsearch.strategies.nao import NAO
from archsearch.strategies.pnas import MLPEnsemble, ProgressiveSearch

from conftest import drive, synthetic_score


# ---- PNAS ------------------------------------------------------------------------------------------------------
def test_pnas_grows_one_decision_at_a_time_from_the_default():
    space = get_space("nb201")
    s = ProgressiveSearch(space, seed=0, beam=3, default="first")
    target = space.sample(np.random.default_rng(1))
    _, asked = drive(s, space, target, 5 + 3)
    first = space.decisions[0]
    level1 = asked[:5]  # every choice of the first decision, the rest at its default ('none')
    assert {a[first.label] for a in level1} == set(first.choices)
    assert all(a[d.label] == d.choices[0] for a in level1 for d in space.decisions[1:])
    level2 = asked[5:8]  # K expansions of the kept cells by the second decision
    for a in level2:
        assert all(a[d.label] == d.choices[0] for d in space.decisions[2:])
    assert s.level == 1


def test_pnas_keeps_searching_after_the_last_decision():
    space = get_space("nb201")
    s = ProgressiveSearch(space, seed=0, beam=2, steps=30)
    target = space.sample(np.random.default_rng(2))
    _, asked = drive(s, space, target, 40)
    assert s.level >= len(space.decisions) and len(set(asked)) == 40


def test_mlp_ensemble_ranks_unseen_architectures():
    space = get_space("nb201")
    rng = np.random.default_rng(0)
    w = rng.normal(size=space.encoding_width)
    archs = list({space.sample(rng) for _ in range(140)})
    X = np.stack([space.encode(a) for a in archs])
    y = X @ w
    model = MLPEnsemble.fitted(X[:100], y[:100], seed=0, steps=150)
    rho = spearmanr(model.predict(X[100:]), y[100:])[0]
    assert rho > 0.7, rho


def test_pnas_beats_random_on_a_synthetic_objective():
    space = get_space("macro", layers=4)
    pn, rs = [], []
    for seed in range(4):
        target = space.sample(np.random.default_rng(700 + seed))
        pn.append(drive(ProgressiveSearch(space, seed=seed, steps=60), space, target, 80)[0])
        rs.append(drive(make_strategy("random", space, seed=seed), space, target, 80)[0])
    assert np.mean(pn) > np.mean(rs) + 5.0, (np.mean(pn), np.mean(rs))


def test_pnas_bad_options():
    with pytest.raises(ValueError, match="default"):
        ProgressiveSearch(get_space("nb201"), default="middle")
    with pytest.raises(ValueError, match="beam"):
        ProgressiveSearch(get_space("nb201"), beam=0)


# ---- NAO -------------------------------------------------------------------------------------------------------
def trained_nao(space, n=40, seed=0):
    s = NAO(space, seed=seed, steps=150)
    rng = np.random.default_rng(seed)
    target = space.sample(np.random.default_rng(99))
    while len(s.values) < n:
        a = space.sample(rng)
        s.tell(Observation(a, synthetic_score(space, a, target)))
    s.train()
    return s, target


def test_nao_decoder_reconstructs_and_predictor_orders():
    space = get_space("nb201")
    s, target = trained_nao(space)
    archs = list(s.values)
    with torch.no_grad():
        e = s.model.encode(s.tokens(archs))
        rows = s.model.decode(e).tolist()
        pred = s.model.predict(e).numpy()
    recon = np.mean([s.arch_of(r) == a for r, a in zip(rows, archs)])
    assert recon >= 0.8, recon
    assert spearmanr(pred, [s.values[a] for a in archs])[0] > 0.6


def test_nao_gradient_ascent_finds_new_architectures_predicted_better():
    space = get_space("nb201")
    s, _ = trained_nao(space)
    new = s._generate()
    assert new and all(space.contains(a) and a not in s.values for a in new)
    with torch.no_grad():
        p_new = s.model.predict(s.model.encode(s.tokens(new))).mean()
        p_old = s.model.predict(s.model.encode(s.tokens(list(s.values)))).mean()
    assert float(p_new) > float(p_old)


def test_nao_runs_on_a_conditional_space():
    space = get_space("hierarchical", channels=4, cells=1, motifs=2, motif_nodes=3, cell_nodes=3)
    s = NAO(space, seed=0, n_init=4, steps=20)
    target = space.sample(np.random.default_rng(3))
    _, asked = drive(s, space, target, 10)
    assert all(space.contains(a) for a in asked) and len(set(asked)) == 10


def test_nao_beats_random_on_a_synthetic_objective():
    space = get_space("macro", layers=4)
    na, rs = [], []
    for seed in range(4):
        target = space.sample(np.random.default_rng(800 + seed))
        na.append(drive(NAO(space, seed=seed, steps=20, first_steps=80), space, target, 80)[0])
        rs.append(drive(make_strategy("random", space, seed=seed), space, target, 80)[0])
    assert np.mean(na) > np.mean(rs) + 5.0, (np.mean(na), np.mean(rs))


def test_nao_bad_options():
    with pytest.raises(ValueError, match="trade_off"):
        NAO(get_space("nb201"), trade_off=2.0)
