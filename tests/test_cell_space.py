"""The NASNet/DARTS cell space and the published genotypes."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from archsearch import Architecture, ArchitectureError, InputShape, get_space
from archsearch.genotypes import (DARTS_V2, PUBLISHED, Genotype, arch_to_genotype, format_genotype, genotype_to_arch,
    infer_concat_mode, parse_genotype)
from archsearch.spaces.cell import published_space_and_arch
from archsearch.ops import SepConv

DIGITS = InputShape(1, 8, 8, 10)
CIFAR = InputShape(3, 32, 32, 10)

DARTS_V2_TEXT = (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
    "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], "
    "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
    "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models: one thread is faster, and avoids spin-waiting when the machine is busy."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def small_space(**config):
    return get_space("cell", **{"channels": 4, "layers": 3, **config})


def sample(space, seed=0) -> Architecture:
    return space.sample(np.random.default_rng(seed))


@pytest.mark.parametrize("shape", [DIGITS, CIFAR, InputShape(2, 9, 13, 3)])
@pytest.mark.parametrize("concat", ["all", "loose"])
def test_sample_build_forward(shape, concat):
    space = get_space("cell", channels=8, concat=concat)
    model = space.build(sample(space, 1), shape).eval()
    with torch.no_grad():
        out = model(torch.randn(2, *shape.size))
    assert out.shape == (2, shape.num_classes)


def test_decisions_per_cell_type_node_and_slot():
    space = get_space("cell", nodes=3)
    assert len(space.decisions) == 2 * 3 * 2 * 2
    d = space.decision("reduce_n2_in1")
    assert d.kind == "inputs" and d.options == (0, 1, 2, 3) and d.n_chosen == 1
    assert space.decision("normal_n0_op0").options == ("max_pool_3x3", "avg_pool_3x3", "skip_connect",
                                                      "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")


def test_build_holds_only_the_chosen_ops():
    space = get_space("cell", channels=4, layers=5)
    for seed in range(4):
        arch = sample(space, seed)
        g = arch_to_genotype(space, arch)
        model = space.build(arch, DIGITS)
        n_normal, n_reduce = 3, 2  # 5 cells, reductions at 1 and 3
        for prefix, kind in (("sep_conv", SepConv), ("max_pool", torch.nn.MaxPool2d), ("avg_pool", torch.nn.AvgPool2d)):
            expected = n_normal * sum(op.startswith(prefix) for op, _ in g.normal) \
                + n_reduce * sum(op.startswith(prefix) for op, _ in g.reduce)
            assert sum(isinstance(m, kind) for m in model.modules()) == expected, (prefix, g)


def test_shared_genotype_and_reduction_layout():
    space = get_space("cell", channels=4, layers=6)
    model = space.build(sample(space), DIGITS)
    assert [cell.reduction for cell in model.cells] == [False, False, True, False, True, False]
    normal_ops = [[type(op).__name__ for op in cell.ops] for cell in model.cells if not cell.reduction]
    assert all(ops == normal_ops[0] for ops in normal_ops)


def test_json_round_trip():
    space = get_space("cell")
    arch = sample(space, 3)
    assert Architecture.from_json(arch.to_json()) == arch
    assert space.parse(arch.to_json()) == arch
    assert isinstance(arch["normal_n1_in0"], tuple) and len(arch["normal_n1_in0"]) == 1


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_genotype_round_trip_and_build(name):
    config, arch = genotype_to_arch(PUBLISHED[name])
    space = small_space(**config)
    assert space.contains(arch)
    assert arch_to_genotype(space, arch) == PUBLISHED[name]
    assert parse_genotype(format_genotype(PUBLISHED[name])) == PUBLISHED[name]
    model = space.build(arch, DIGITS).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_concat_modes_of_published_cells():
    assert infer_concat_mode(PUBLISHED["darts_v2"]) == "all"
    for name in ("nasnet_a", "amoebanet_a", "enas"):
        assert infer_concat_mode(PUBLISHED[name]) == "loose"
    space, arch = published_space_and_arch("nasnet_a", channels=4, layers=3)
    model = space.build(arch, DIGITS)
    assert model.cells[0].concat == [2, 3, 4, 5, 6] and model.cells[1].concat == [4, 5, 6]
    assert "sep_conv_7x7" in space.config["ops"]
    bad = Genotype(DARTS_V2.normal, [2, 3], DARTS_V2.reduce, [2, 3, 4, 5])
    with pytest.raises(ArchitectureError):
        genotype_to_arch(bad)


def test_format_parse_round_trip():
    space = get_space("cell")
    for seed in range(5):
        arch = sample(space, seed)
        text = space.format(arch)
        assert text.startswith("Genotype(normal=[(")
        assert space.parse(text) == arch
    loose = get_space("cell", concat="loose")
    arch = sample(loose, 7)
    assert loose.parse(loose.format(arch)) == arch


def test_parse_darts_string_exactly():
    assert format_genotype(DARTS_V2) == DARTS_V2_TEXT
    assert parse_genotype(DARTS_V2_TEXT) == DARTS_V2
    as_printed = DARTS_V2_TEXT.replace("[2, 3, 4, 5]", "range(2, 6)")  # what DARTS's search prints
    space, arch = published_space_and_arch("darts_v2", channels=4, layers=3)
    assert space.parse(as_printed) == arch
    assert space.format(arch) == DARTS_V2_TEXT


def test_parse_rejects_bad_text():
    space = get_space("cell")
    for text in ("Genotype(normal=[", "Genotipe(normal=[], normal_concat=[], reduce=[], reduce_concat=[])",
                 DARTS_V2_TEXT.replace("[2, 3, 4, 5])", "__import__('os'))"),
                 DARTS_V2_TEXT.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 5)"),
                 DARTS_V2_TEXT.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=[5]")):
        with pytest.raises(ArchitectureError):
            space.parse(text)
    nasnet = format_genotype(PUBLISHED["nasnet_a"])
    with pytest.raises(ArchitectureError):  # 5 nodes and sep_conv_7x7: not in the default space
        space.parse(nasnet)


def test_config_errors():
    with pytest.raises(ValueError, match="unknown cell op 'conv_9x9'"):
        get_space("cell", ops=["sep_conv_3x3", "conv_9x9"])
    with pytest.raises(ValueError):
        get_space("cell", concat="some")
    with pytest.raises(ValueError):
        get_space("cell", layers=2)
    with pytest.raises(ValueError):
        published_space_and_arch("resnet")


def test_any_cell_op_allowed():
    space = small_space(ops=["none", "conv_7x1_1x7", "sep_conv_7x7"])
    model = space.build(sample(space), DIGITS).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 8, 8)).shape == (1, 10)


@pytest.mark.parametrize("shape", [DIGITS, CIFAR])
def test_train_mode_drop_path_and_auxiliary_head(shape):
    space = get_space("cell", channels=4, auxiliary=True)
    model = space.build(sample(space, 2), shape).train()
    model.drop_path_prob = 0.3
    logits, aux = model(torch.randn(3, *shape.size))
    assert logits.shape == aux.shape == (3, 10)
    (logits.sum() + 0.4 * aux.sum()).backward()
    model.eval()
    assert model(torch.randn(3, *shape.size)).shape == (3, 10)
    plain = get_space("cell", channels=4).build(sample(space, 2), shape).train()
    plain.drop_path_prob = 0.2
    assert plain(torch.randn(2, *shape.size)).shape == (2, 10)


def test_drop_path_spares_identity_edges():
    space, arch = published_space_and_arch("darts_v1", channels=4, layers=3)
    cell = space.build(arch, DIGITS).train().cells[0]  # normal: node 2 = two sep convs, node 3 = skip(0) + sep(1)
    torch.manual_seed(0)
    out = cell(torch.randn(4, 12, 8, 8), torch.randn(4, 12, 8, 8), 0.999)
    node2, node3 = out[:, 0:4], out[:, 4:8]
    assert node2.abs().sum() == 0  # both branches dropped for every sample
    assert (node3.flatten(1).abs().sum(1) > 0).all()  # the identity branch is never dropped


def test_darts_v2_parameter_count():
    """DARTS's own code reports 3.349342 MB for DARTS_V2 at C=36, 20 cells (auxiliary head excluded)."""
    space, arch = published_space_and_arch("darts_v2", channels=36, layers=20, auxiliary=True)
    model = space.build(arch, CIFAR)
    n = sum(p.numel() for name, p in model.named_parameters() if "auxiliary" not in name)
    assert n == 3_349_342
