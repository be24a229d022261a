"""The tabular NAS-Bench-201 evaluator: known rows of the shipped table, custom tables, one-line errors."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from archsearch import get_space
from archsearch.errors import UserError
from archsearch.evaluators import make_evaluator
from archsearch.evaluators.tabular import TabularEvaluator, default_table_path
from archsearch.spaces.nb201 import from_string

ARCH1 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
BEST_VAL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|"
ARCH0 = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
SHARED_CSV = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "nb201_cifar10_12ep.csv"
HEADER = "arch,cellstr,cifar10-val,cifar10-test\n"


@pytest.fixture(scope="module")
def space():
    return get_space("nb201")


@pytest.fixture(scope="module")
def ev(space) -> TabularEvaluator:
    return make_evaluator("tabular", space)


def test_known_rows_of_the_shipped_table(ev, space):
    assert len(ev) == 15625
    r = ev.evaluate(from_string(ARCH1))
    assert r.ok and r.cost_seconds == pytest.approx(12 * 10.8482)  # 12 epochs of the cell's CIFAR-10 seconds
    assert {k: r.metrics[k] for k in ("val_accuracy", "test_accuracy", "arch_index")} == {
        "val_accuracy": pytest.approx(82.834), "test_accuracy": pytest.approx(88.22), "arch_index": 1.0}
    r0 = ev.evaluate(space.parse(ARCH0))
    assert r0.metrics["arch_index"] == 0.0 and r0.metrics["val_accuracy"] == pytest.approx(63.364)


def test_facts_from_the_data_readme(ev, space):
    arch, row = ev.best()
    assert space.format(arch) == BEST_VAL
    assert row.val_accuracy == pytest.approx(84.89, abs=0.005)
    assert row.test_accuracy == pytest.approx(89.03)
    assert max(r.test_accuracy for r in ev.rows.values()) == pytest.approx(89.16)


def test_every_sampled_cell_is_in_the_table(ev, space):
    rng = np.random.default_rng(0)
    results = [ev.evaluate(space.sample(rng)) for _ in range(300)]
    assert all(r.ok and 0 < r.metrics["val_accuracy"] < 100 for r in results)


def test_shipped_table_is_package_data_and_matches_shared(ev):
    path = default_table_path()
    assert path.name.endswith(".csv.gz") and path.parent.name == "data" and path.parent.parent.name == "archsearch"
    if not SHARED_CSV.is_file():
        pytest.skip("shared data not present")
    with gzip.open(path, "rt") as f:
        assert f.read() == SHARED_CSV.read_text()


def test_other_space_config_is_fine_but_other_spaces_are_refused():
    small = get_space("nb201", channels=8, cells_per_stage=1)
    tiny = str(Path(__file__).parent)  # never read: the space check comes first
    with pytest.raises(UserError, match="nb201"):
        make_evaluator("tabular", get_space("macro"), table=tiny)
    r = make_evaluator("tabular", small).evaluate(from_string(ARCH1))
    assert r.metrics["arch_index"] == 1.0


def test_simulated_cost_and_config_round_trip(space):
    ev = make_evaluator("tabular", space, seconds_per_epoch=10.0, seconds_per_query=1.5)
    assert ev.evaluate(from_string(ARCH1)).cost_seconds == pytest.approx(1.5 + 10.0 * 12)
    cfg = ev.config()
    assert cfg == {"table": None, "seconds_per_query": 1.5, "seconds_per_epoch": 10.0, "epochs": 12,
                   "cost_table": "default"}
    again = make_evaluator("tabular", space, **cfg)
    assert again.evaluate(from_string(ARCH1)).cost_seconds == pytest.approx(121.5)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_custom_table_with_same_columns(tmp_path, space):
    # columns in another order and an extra column are fine; a cell missing from the table is a failed Result
    csv = _write(tmp_path / "mine.csv", "cellstr,extra,cifar10-test,cifar10-val,arch\n"
                 f"{ARCH1},x,91.5,90.25,7\n{ARCH0},y,50,40.5,3\n")
    ev = make_evaluator("tabular", space, table=str(csv))
    assert len(ev) == 2 and ev.config()["table"] == str(csv)
    r = ev.evaluate(from_string(ARCH1))
    assert {k: r.metrics[k] for k in ("val_accuracy", "test_accuracy", "arch_index")} == {
        "val_accuracy": 90.25, "test_accuracy": 91.5, "arch_index": 7.0}
    missing = ev.evaluate(from_string(BEST_VAL))
    assert not missing.ok and "not in table" in missing.error and missing.metrics == {}
    gz = tmp_path / "mine.csv.gz"
    gz.write_bytes(gzip.compress(csv.read_bytes()))
    assert make_evaluator("tabular", space, table=gz).evaluate(from_string(ARCH0)).metrics["arch_index"] == 3.0


@pytest.mark.parametrize("text, message", [
    ("arch,cellstr,cifar10-val\n1,|none~0|,1\n", r"missing column\(s\) cifar10-test"),
    (HEADER + f"1,{ARCH1},80,90\n2,|nor_conv_3x3~0|+|bad_op~0|none~1|,1,2\n", r"line 3: cell string does not parse"),
    (HEADER + f"1,{ARCH1},eighty,90\n", r"line 2: cifar10-val is 'eighty', not a number"),
    (HEADER + f"1,{ARCH1},80,90\n2,{ARCH1},81,91\n", r"line 3: cell .* already given on line 2"),
    (HEADER, r"no rows"),
    ("", r"missing column"),
])
def test_bad_tables_raise_one_line_user_errors(tmp_path, space, text, message):
    csv = _write(tmp_path / "bad.csv", text)
    with pytest.raises(UserError, match=message) as info:
        make_evaluator("tabular", space, table=csv)
    assert "\n" not in str(info.value) and ("bad.csv" in str(info.value))


def test_unreadable_table(tmp_path, space):
    with pytest.raises(UserError, match="no such file"):
        make_evaluator("tabular", space, table=tmp_path / "nope.csv")
    broken = tmp_path / "broken.csv.gz"
    broken.write_bytes(b"not gzip at all")
    with pytest.raises(UserError, match="cannot read it"):
        make_evaluator("tabular", space, table=broken)
