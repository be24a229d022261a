"""What is specific to the space machinery (user-defined spaces, sizes, canonical forms, equivalence); the contract
every registered space keeps is in test_contracts.py."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from archsearch.space import Architecture, ArchitectureError, InputShape, space_from_function
from archsearch.spaces import get_space

from conftest import user_space


def make(name):
    return space_from_function(user_space, "user")


def test_build_holds_only_the_chosen_ops():
    space = make("user")
    model = space.build({"width": 8, "act": "gelu", "conv": "3x3"}, InputShape(1, 8, 8, 10))
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 1 and convs[0].kernel_size == (3, 3)
    assert not any(isinstance(m, nn.ReLU) for m in model.modules())
    macro = get_space("macro", layers=3)
    arch = macro.sample(np.random.default_rng(0))
    arch = Architecture({**arch, **{f"l{i}_op": "conv" for i in range(3)}})
    m = macro.build(arch, InputShape(1, 8, 8, 10))
    assert not any(type(x).__name__ == "SepConvBNReLU" for x in m.modules())
    # every parameter of a macro network is used: one backward reaches them all
    m(torch.randn(4, 1, 8, 8)).sum().backward()
    assert all(p.grad is not None for p in m.parameters())


def test_sizes_and_enumeration():
    assert get_space("nb201").size == 15625
    user = make("user")
    archs = list(user.enumerate())
    assert len(archs) == user.size == 8 and len(set(archs)) == 8
    with pytest.raises(ValueError, match="more than"):
        next(get_space("macro").enumerate(limit=1000))


def test_built_model_saves_and_loads_like_any_pytorch_model(tmp_path):
    space = get_space("macro", layers=3)
    arch = space.sample(np.random.default_rng(7))
    shape = InputShape(1, 8, 8, 10)
    model = space.build(arch, shape).eval()
    torch.save(model.state_dict(), tmp_path / "w.pt")
    other = space.build(arch, shape).eval()
    other.load_state_dict(torch.load(tmp_path / "w.pt"))
    x = torch.randn(3, 1, 8, 8)
    assert torch.allclose(model(x), other(x))


def test_nb201_string_round_trip():
    from archsearch.spaces.nb201 import from_string, to_string
    s = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    arch = from_string(s)
    assert to_string(arch) == s
    with pytest.raises(ArchitectureError):
        from_string("|nor_conv_3x3~0|+|bogus~0|")


def conditional_space(c, shape):
    kind = c.value("kind", ["conv", "pool"])
    k = c.value("kernel", [3, 5], active=kind == "conv")
    body = nn.Conv2d(shape.channels, 8, k, padding=k // 2) if kind == "conv" else nn.Sequential(
        nn.AvgPool2d(3, 1, 1), nn.Conv2d(shape.channels, 8, 1))
    return nn.Sequential(body, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, shape.num_classes))


def test_conditional_decisions_are_canonicalised():
    space = space_from_function(conditional_space)
    assert space.conditional
    archs = list(space.enumerate())
    assert len(archs) == 3  # conv3, conv5, pool (its kernel does not matter)
    pool = space.canonical(Architecture({"kind": "pool", "kernel": 5}))
    assert pool == Architecture({"kind": "pool", "kernel": 3})
    assert space.neighbours(pool) == [Architecture({"kind": "conv", "kernel": 3})]


def test_bad_space_definitions_fail_clearly():
    def clash(c, shape):
        c.value("x", [1, 2])
        c.value("x", [1, 3])
        return nn.Identity()

    with pytest.raises(ValueError, match="two different decisions"):
        space_from_function(clash)


def test_nb201_cells_equal_up_to_unused_nodes_are_equivalent():
    from archsearch import get_space
    from archsearch.spaces.nb201 import from_string, to_string
    sp = get_space("nb201")
    dead = from_string("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|none~1|none~2|")
    assert to_string(sp.equivalent(dead)) == "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"
    alive = from_string("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|none~2|")
    assert to_string(sp.equivalent(alive)) == "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|nor_conv_1x1~1|none~2|"
    full = from_string("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_1x1~2|")
    assert sp.equivalent(full) == full and sp.equivalent(sp.equivalent(dead)) == sp.equivalent(dead)
    assert len({sp.equivalent(a) for a in sp.enumerate()}) == 12_205  # of 15,625 cells
    macro = get_space("macro")  # spaces without such a rule: the canonical architecture
    a = macro.sample(__import__("numpy").random.default_rng(0))
    assert macro.equivalent(a) == macro.canonical(a)
