"""The hand-designed reference of each space: valid, buildable, runs forward, JSON round trip; every search
trains it and says how the best found compares; train --with-reference retrains both."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from archsearch.space import Architecture, InputShape
from archsearch.spaces import get_space, space_names

WITH_REFERENCE = [n for n in space_names() if get_space(n).reference() is not None]


TEXT = ("rnn", "enas-rnn")
#: Other settings each space supports: the reference must follow them (layers, nodes, ops, stages, kernels).
CONFIGS = [("macro", {"layers": 3}), ("macro", {"layers": 9, "kernels": (1, 5), "filters": (8, 64)}),
           ("nb201", {"channels": 8, "cells_per_stage": 1}), ("cell", {"nodes": 2, "layers": 3}),
           ("cell", {"layers": 3, "ops": ("max_pool_3x3", "dil_conv_3x3")}),
           ("cell", {"network": "nasnet", "layers": 5, "nodes": 2}),
           ("mbconv", {"width_mult": 0.5}), ("mbconv", {"block_choice": "op", "width_mult": 0.5}),
           ("superkernel", {"layers": 3, "max_kernel": 2}), ("rnn", {"nodes": 3}), ("enas-rnn", {"nodes": 5}),
           ("hierarchical", {"cells": 2, "motifs": 2, "motif_nodes": 3, "cell_nodes": 3})]
SMALL = {"macro": {"layers": 3}, "cell": {"layers": 3}, "nb201": {"cells_per_stage": 1},
         "hierarchical": {"cells": 2}, "rnn": {"emb": 8, "hidden": 8}, "enas-rnn": {"emb": 8, "hidden": 8}}


def _runs_forward(sp, ref) -> None:
    """The reference builds and maps a tiny batch to one logit per class (tokens to per-step logits for text)."""
    if sp.name in TEXT:
        model = sp.build(ref, InputShape(1, 1, 5, 12)).eval()
        with torch.no_grad():
            assert model(torch.zeros(2, 5, dtype=torch.long)).shape == (2, 12, 5)
        return
    shape = InputShape(1, 8, 8, 10) if sp.name != "mbconv" else InputShape(3, 32, 32, 10)
    model = sp.build(ref, shape).eval()
    with torch.no_grad():
        assert model(torch.zeros(2, shape.channels, shape.height, shape.width)).shape == (2, 10)


def test_the_built_in_spaces_name_references():
    assert {"macro", "nb201", "cell", "mbconv", "superkernel", "rnn", "hierarchical"} <= set(WITH_REFERENCE)


def test_a_users_space_names_its_own_reference_or_none():
    from archsearch.spaces import SPACES, register_space

    def tiny(c, shape):
        k = c.value("k", [1, 3])
        return torch.nn.Sequential(torch.nn.Conv2d(shape.channels, 4, k, padding=k // 2),
                                   torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 10))
    try:
        register_space("test-tiny-ref", reference=lambda sp: Architecture({"k": 3}))(tiny)
        register_space("test-tiny-noref")(tiny)
        assert get_space("test-tiny-ref").reference() == Architecture({"k": 3})
        assert get_space("test-tiny-noref").reference() is None
    finally:
        for name in ("test-tiny-ref", "test-tiny-noref"):
            SPACES._items.pop(name, None)


@pytest.mark.parametrize("name", WITH_REFERENCE)
def test_reference_builds_and_runs_forward(name):
    sp = get_space(name, **SMALL.get(name, {}))
    ref = sp.reference()
    assert sp.contains(ref) and Architecture.from_json(ref.to_json()) == ref
    assert sp.reference() == ref  # a value: the same every time
    _runs_forward(sp, ref)


@pytest.mark.parametrize("name,config", CONFIGS, ids=[f"{n}-{'-'.join(map(str, c))}" for n, c in CONFIGS])
def test_reference_follows_the_space_configuration(name, config):
    sp = get_space(name, **config)
    ref = sp.validate(sp.reference())
    assert Architecture.from_json(ref.to_json()) == ref and sp.format(ref)
    _runs_forward(sp, ref)


def test_references_follow_the_space_configuration():
    three = get_space("macro", layers=3)
    assert three.format(three.reference()) == "conv3-16 conv3-24 conv3-32"
    assert get_space("macro").format(get_space("macro").reference()).split()[0] == "conv3-16"
    assert get_space("nb201").format(get_space("nb201").reference()).startswith("|nor_conv_3x3~0|+|none~0|")


def test_references_pick_the_nearest_choice_when_theirs_is_missing():
    sp = get_space("macro", layers=3, kernels=(1, 5), filters=(8, 64))
    assert sp.format(sp.reference()) == "conv5-8 conv5-8 conv5-64"
    sk = get_space("superkernel", layers=2, max_kernel=2)
    assert sk.format(sk.reference()) == "2x2 2x2"
    c = get_space("cell", layers=3, ops=("max_pool_3x3", "sep_conv_5x5", "skip_connect"))
    assert {c.reference()[lbl] for lbl in c.labels if "_op" in lbl} == {"sep_conv_5x5", "skip_connect"}
    h = get_space("hierarchical", cells=1)
    assert h.format(h.reference()).startswith("top: 1<-0 motif0, 2<-1 motif0")


def test_macro_on_digits_is_unchanged_by_the_automatic_stem_stride():
    """8x8 digits keep the stride-1 stem: the same parameters and the same output as stem_stride=1."""
    auto, stride1 = get_space("macro"), get_space("macro", stem_stride=1)
    x = torch.randn(3, 1, 8, 8)
    for arch in [auto.reference(), *(auto.sample(np.random.default_rng(s)) for s in range(3))]:
        torch.manual_seed(0)
        a = auto.build(arch, InputShape(1, 8, 8, 10)).eval()
        torch.manual_seed(0)
        b = stride1.build(arch, InputShape(1, 8, 8, 10)).eval()
        assert sum(p.numel() for p in a.parameters()) == sum(p.numel() for p in b.parameters())
        with torch.no_grad():
            assert torch.equal(a(x), b(x))


@pytest.mark.parametrize("size,final", [(28, 3), (32, 4)])
def test_macro_runs_on_larger_inputs_with_the_default_reductions(size, final):
    sp = get_space("macro")
    model = sp.build(sp.reference(), InputShape(1, size, size, 10)).eval()
    with torch.no_grad():
        outs = [model.stem(torch.zeros(2, 1, size, size))]
        for layer in model.layers:
            outs.append(layer(outs[-1], outs[:-1]))
        assert outs[0].shape[-1] == size // 2 and outs[-1].shape[-1] == final  # 28 -> 14 -> 7 -> 3
        for s in range(3):
            m = sp.build(sp.sample(np.random.default_rng(s)), InputShape(1, size, size, 10)).eval()
            assert m(torch.zeros(2, 1, size, size)).shape == (2, 10)


def test_macro_reduces_early_on_large_inputs_only():
    sp = get_space("macro", layers=3)
    ref = sp.reference()
    small, large = sp.build(ref, InputShape(1, 8, 8, 10)), sp.build(ref, InputShape(1, 28, 28, 10))
    assert small.stem[0].stride == (1, 1) and large.stem[0].stride == (2, 2)
    assert sp.build(ref, InputShape(1, 28, 28, 10)).stem[0].stride == (2, 2)
    assert get_space("macro", stem_stride=1).build(get_space("macro").reference(), InputShape(1, 28, 28, 10)) \
        .stem[0].stride == (1, 1)


def test_search_trains_the_reference_and_compares(tmp_path):
    from archsearch.cli import app
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["search", "--space", "macro", "--space-opt", "layers=2", "--strategy", "random",
                                   "--trials", "2", "--epochs", "1", "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "best found vs reference:" in res.output and "points val" in res.output
    doc = json.loads(CliRunner().invoke(app, ["show", str(out), "--json"]).output)
    assert doc["reference"]["text"] == "conv3-16 conv3-32" and doc["reference"]["status"] == "ok"
    assert doc["vs_reference"]["val_accuracy"] == pytest.approx(
        doc["best"]["val_accuracy"] - doc["reference"]["metrics"]["val_accuracy"])
    res = CliRunner().invoke(app, ["train", str(out), "--with-reference", "--epochs", "1", "--no-latency",
                                   "--quiet"])
    assert res.exit_code == 0, res.output
    assert "retrained best vs reference:" in res.output
    assert (out / "final-reference" / "result.json").exists()
