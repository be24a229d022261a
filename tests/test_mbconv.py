"""The MBConv space (MnasNet / ProxylessNAS / MobileNetV3): MobileNetV3-Large exactly, text form, both ways of
asking for a block (factorised values, or one op decision for one-shot search), latency units."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from archsearch.hardware.cost import count_flops, count_params
from archsearch.hardware.latency_table import space_units
from archsearch.ops import MBConv, make_divisible
from archsearch.space import ArchitectureError, InputShape
from archsearch.spaces import get_space
from archsearch.spaces.mbconv import MOBILENETV3_LARGE

TINY = dict(widths=[[8], [8, 16], [16, 24]], depths=[[1], [1, 2], [1, 2]], strides=[1, 2, 2], kernels=[3, 5],
            expand_ratios=[1, 3], stem_channels=8, head_channels=32, feature_channels=32, stem_stride=1,
            dropout=0.0)
DIGITS = InputShape(1, 8, 8, 10)


def test_mobilenetv3_large_is_in_the_default_space_with_torchvisions_counts():
    """Howard et al. (ICCV 2019) report 5.4M parameters and 219M multiply-adds at 224x224. The reference
    implementation (torchvision's mobilenet_v3_large) has 5,483,032 parameters; torch's flop counter gives
    216.6M multiply-adds (convolutions and linear layers only)."""
    space = get_space("mbconv")
    arch = space.parse("mobilenetv3_large")
    assert space.format(arch) == MOBILENETV3_LARGE
    with torch.device("meta"):
        model = space.build(arch, InputShape(3, 224, 224, 1000))
    assert count_params(model) == 5_483_032
    macs = count_flops(model, (3, 224, 224)) // 2
    assert macs == 216_589_760
    hidden = [b.spec.split("hidden=")[1].split(",")[0] for b in model.blocks]
    assert hidden == ["16", "64", "72", "72", "120", "120", "240", "200", "184", "184", "480", "672", "672", "960",
                      "960"]  # the "exp size" column of the paper's Table 1


def test_depth_makes_deeper_blocks_inactive():
    space = get_space("mbconv", **TINY)
    arch = space.sample(np.random.default_rng(3)).replace(s2_depth=1)
    arch = space.canonical(arch)
    assert "s2_b2_kernel" not in space.active(arch)
    changed = arch.replace(s2_b2_kernel=5 if arch["s2_b2_kernel"] == 3 else 3)
    assert space.canonical(changed) == arch  # an inactive block does not make another architecture
    assert len(space.build(arch, DIGITS).blocks) == 1 + 1 + int(arch["s3_depth"])


def test_op_mode_asks_one_layer_decision_per_block_with_skip_beyond_the_minimum_depth():
    space = get_space("mbconv", block_choice="op", **TINY)
    kinds = {d.label: d for d in space.decisions}
    assert kinds["s1_b1"].kind == "layer" and "skip" not in kinds["s1_b1"].options
    assert "skip" in kinds["s2_b2"].options and len(kinds["s2_b2"].options) == 2 * 2 * 2 * 2 + 1
    arch = space.parse("8x1(k3e1) 16x1(k5e3+se/hs) 24x2(k3e3 k5e1/hs)")
    assert arch["s2_b2"] == "skip" and arch["s2_b1"] == "k5_e3_se_hs"


def test_parse_errors_are_one_line_architecture_errors():
    space = get_space("mbconv")
    with pytest.raises(ArchitectureError, match="stages"):
        space.parse("16x1[k3e1]")
    with pytest.raises(ArchitectureError, match="cannot read"):
        space.parse(MOBILENETV3_LARGE.replace("k3e4", "k4x4"))
    with pytest.raises(ArchitectureError, match="not in space"):
        space.parse(MOBILENETV3_LARGE.replace("k3e4", "k9e4"))


def test_small_inputs_keep_a_minimum_resolution():
    space = get_space("mbconv")
    model = space.build(space.parse("mobilenetv3_large"), DIGITS)
    shapes = [key.rpartition("@")[2] for key, _ in model.latency_units()]
    assert shapes[0] == "1x8x8" and shapes[-1] == "160x2x2"
    assert model.eval()(torch.randn(1, 1, 8, 8)).shape == (1, 10)


@pytest.mark.parametrize("mode", ["values", "op"])
def test_every_unit_of_every_model_is_enumerated(mode):
    space = get_space("mbconv", block_choice=mode, **TINY)
    keys = {k for k, _, _ in space_units(space, DIGITS)}
    assert len(keys) == len(list(space_units(space, DIGITS)))  # each once
    rng = np.random.default_rng(1)
    for _ in range(20):
        with torch.device("meta"):
            model = space.build(space.sample(rng), DIGITS)
        assert {k for k, _ in model.latency_units()} <= keys


def test_mbconv_block_follows_mobilenet_rules():
    assert make_divisible(80 * 2.3) == 184 and make_divisible(16 * 2.3) == 40 and make_divisible(10) == 16
    b = MBConv(16, 16, 3, 1, 1, False, "relu")
    assert isinstance(b.expand, torch.nn.Identity) and b.residual  # expansion 1: no 1x1 expansion conv
    b = MBConv(16, 24, 5, 6, 2, True, "hswish")
    assert not b.residual and b.se.fc1.out_channels == make_divisible(96 // 4)
