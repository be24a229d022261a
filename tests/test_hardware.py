"""Cost model (params, FLOPs, measured latency), the per-op latency table and the training evaluator's hardware
metrics. Tiny models and few repeats: these check the machinery, the benchmarks check the numbers."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from archsearch.errors import UserError
from archsearch.evaluators import make_evaluator
from archsearch.hardware.cost import count_flops, count_params, latency_lock, measure_latency
from archsearch.hardware.latency_table import LatencyTable, profile_space
from archsearch.spaces import get_space

from test_mbconv import DIGITS, TINY


def test_flops_follow_the_multiply_add_formula_on_meta_and_real_tensors():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 16 * 16, 10))
    macs = 8 * 3 * 9 * 16 * 16 + 8 * 16 * 16 * 10
    assert count_flops(model, (3, 16, 16)) == 2 * macs
    assert count_flops(model, (3, 16, 16), batch=4) == 8 * macs
    assert count_params(model) == 8 * 27 + 8 + 2048 * 10 + 10


class NoMeta(nn.Module):
    def forward(self, x):
        return torch.from_numpy(np.ones((x.shape[0], 2), dtype=np.float32)) @ torch.ones(2, 3)


def test_flops_fall_back_to_real_tensors_when_meta_fails():
    assert count_flops(NoMeta(), (1, 4, 4)) == 2 * 2 * 3


def test_measure_latency_restores_threads_and_leaves_the_model_alone():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4)).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    threads = torch.get_num_threads()
    stats = measure_latency(model, (1, 8, 8), threads=1, warmup=1, repeats=5)
    assert stats.repeats == 5 and 0 < stats.min_ms <= stats.median_ms <= stats.p90_ms
    assert stats.device == "cpu" and stats.batch == 1 and stats.threads == 1
    assert torch.get_num_threads() == threads and model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # BN stats untouched


def test_measure_latency_stops_at_its_time_cap_and_takes_turns():
    model = nn.Linear(4, 4)
    stats = measure_latency(model, (4,), warmup=0, repeats=10_000, max_seconds=0.0, min_repeats=3)
    assert stats.repeats == 3
    with latency_lock("cpu"):  # held by us: a measurement without the lock still works
        assert measure_latency(model, (4,), repeats=2, lock=False).repeats == 2
    with pytest.raises(ValueError):
        measure_latency(model, (4,), repeats=0)


@pytest.fixture(scope="module")
def tiny_table(tmp_path_factory):
    space = get_space("mbconv", block_choice="op", **TINY)
    table = profile_space(space, DIGITS, warmup=0, repeats=2, max_seconds=0.05)
    path = table.save(tmp_path_factory.mktemp("table") / "table.json")
    return space, table, path


def test_profile_predict_and_round_trip(tiny_table):
    space, table, path = tiny_table
    assert len(table) == 183 and all(v > 0 for v in table.entries.values())
    assert table.meta["space"]["name"] == "mbconv" and table.meta["input"] == [1, 8, 8]
    again = LatencyTable.load(path)
    assert again.entries == table.entries
    arch = space.sample(np.random.default_rng(0))
    model = space.build(arch, DIGITS)
    want = sum(table.entries[k] for k, _ in model.latency_units())
    assert again.predict(space, arch, DIGITS) == pytest.approx(want)
    assert table.predict_model(model) == pytest.approx(want)


def test_prediction_outside_the_profiled_space_is_a_user_error(tiny_table):
    space, table, _ = tiny_table
    wider = get_space("mbconv", block_choice="op", **{**TINY, "widths": [[8], [8, 16], [16, 32]]})
    arch = wider.sample(np.random.default_rng(0)).replace(s3_width=32)
    with pytest.raises(UserError, match="no entry for"):
        table.predict(wider, arch, DIGITS)


@pytest.mark.parametrize("content, message", [
    ("{not json", "cannot read"), ('{"entries": {}}', "not an archsearch latency table"),
    ('{"format": "archsearch-latency-table/1", "entries": {"a": "x"}}', "not a number")])
def test_bad_table_files(tmp_path, content, message):
    p = tmp_path / "t.json"
    p.write_text(content)
    with pytest.raises(UserError, match=message):
        LatencyTable.load(p)
    with pytest.raises(UserError, match="no such file"):
        LatencyTable.load(tmp_path / "missing.json")


def test_layer_costs_feed_the_one_shot_expected_latency(tiny_table):
    """ProxylessNAS/FBNet: per decision, each candidate's table entry at the decision's input shape."""
    space, table, _ = tiny_table
    costs = table.layer_costs(space, DIGITS)
    assert set(costs) == {d.label for d in space.decisions if d.kind == "layer"}
    for label, per_op in costs.items():
        assert set(per_op) == set(space.decision(label).options)
    # the cost of an architecture = fixed units + the chosen candidate of every decision (widths at their max)
    values = {d.label: max(d.options) for d in space.decisions if d.kind == "value"}
    arch = space.sample(np.random.default_rng(2)).replace(**values)
    total = table.fixed_cost(space, DIGITS) + sum(costs[lbl][arch[lbl]] for lbl in costs)
    assert total == pytest.approx(table.predict(space, arch, DIGITS))
    oneshot = pytest.importorskip("archsearch.strategies.oneshot.latency_loss")
    supernet = pytest.importorskip("archsearch.strategies.oneshot.supernet").build_supernet(space, DIGITS)
    vectors = oneshot.load_cost_table(costs, supernet)
    assert set(vectors) == set(costs)


def test_training_evaluator_reports_params_flops_and_latency_when_asked(tiny_table):
    space, _, path = tiny_table
    arch = space.sample(np.random.default_rng(0))
    plain = make_evaluator("train", space, epochs=1, keep_weights=False)
    model = space.build(arch, DIGITS)
    assert set(plain.hardware.static(model, DIGITS)) == {"params", "flops", "macs"}
    assert plain.hardware.latency(model, DIGITS) == {}  # not asked: not measured
    ev = make_evaluator("train", space, epochs=1, keep_weights=False, latency_device="cpu", latency_repeats=3,
                        latency_table=str(path))
    r = ev.evaluate(arch)
    assert r.ok and r.metrics["latency_ms"] > 0 and r.metrics["predicted_latency_ms"] > 0
    assert r.metrics["flops"] == 2 * r.metrics["macs"]
    assert json.loads(json.dumps(ev.config()))["latency_device"] == "cpu"


def test_a_table_of_another_space_is_refused(tiny_table):
    _, _, path = tiny_table
    with pytest.raises(UserError, match="profiled for space"):
        make_evaluator("train", get_space("mbconv", **TINY), latency_table=str(path))


def test_profile_statistic_min_takes_the_fastest_run(monkeypatch):
    from archsearch.hardware import latency_table as lt
    from archsearch.hardware.cost import LatencyStats

    def fake(module, in_shape, **kw):  # every op: runs of 3, 5 and 10 ms
        return LatencyStats(median_ms=5.0, mean_ms=6.0, min_ms=3.0, p90_ms=10.0, repeats=3, warmup=0, batch=1,
                            threads=1, device="cpu", load1=None, clock="wall")

    monkeypatch.setattr(lt, "measure_latency", fake)
    space = get_space("mbconv", block_choice="op", **TINY)
    low = profile_space(space, DIGITS, limit=4, statistic="min")
    mid = profile_space(space, DIGITS, limit=4)
    assert set(low.entries.values()) == {3.0} and set(mid.entries.values()) == {5.0}
    assert low.meta["statistic"] == "min" and mid.meta["statistic"] == "median"
    with pytest.raises(UserError, match="unknown latency statistic"):
        profile_space(space, DIGITS, limit=1, statistic="mean")


def test_latency_is_measured_with_a_steady_allocator():
    import platform

    from archsearch.hardware import cost
    measure_latency(torch.nn.Linear(4, 4), (4,), warmup=0, repeats=1)
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert cost._STEADY_ALLOCATOR is True  # set by the measurement, once
    assert cost.steady_allocator() is cost._STEADY_ALLOCATOR
