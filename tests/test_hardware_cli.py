"""The hardware-aware command line: profile, cost, a constrained Pareto search, show --json, pareto, and one
clear line with exit code 2 for bad input."""
from __future__ import annotations

import json

import pytest

from archsearch.cli import main

from test_mbconv import DIGITS, TINY

SPACE_OPTS = [a for k, v in TINY.items() for a in ("--space-opt", f"{k}={json.dumps(v)}")]


def cli(capsys, *args):
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def test_cost_reports_params_and_multiply_adds(capsys):
    """(MobileNetV3-Large at 224x224, the paper's setting, is checked in test_mbconv.)"""
    code, out, err = cli(capsys, "cost", "--space", "mbconv", *SPACE_OPTS, "--arch", "8x1(k3e1) 8x1(k3e1) 16x1(k3e1)",
                         "--input", "1x8x8", "--classes", "10", "--json")
    assert code == 0, err
    doc = json.loads(out)
    # multiply-adds per layer: stem 3x3 1->8 at 8x8; stage 1 depthwise 3x3 + 1x1 8->8 at 8x8; stage 2 (stride 2)
    # the same at 4x4; stage 3 (stride 2) depthwise at 2x2 + 1x1 8->16; head 1x1 16->32 at 2x2, linear 32->32,
    # linear 32->10
    macs = 9 * 8 * 64 + (9 * 8 + 8 * 8) * 64 + (9 * 8 + 8 * 8) * 16 + (9 * 8 + 8 * 16) * 4 + 16 * 32 * 4 \
        + 32 * 32 + 32 * 10
    assert doc["macs"] == macs == 19_680 and doc["flops"] == 2 * macs and doc["params"] > 0


def test_profile_then_cost_with_the_table(tmp_path, capsys):
    table = tmp_path / "table.json"
    code, out, err = cli(capsys, "profile", "--space", "mbconv", *SPACE_OPTS, "--repeats", "1", "--warmup", "0",
                         "-o", table)
    assert code == 0, err
    assert "ops of space mbconv at 1x8x8" in out
    doc = json.loads(table.read_text())
    assert doc["format"] == "archsearch-latency-table/1" and len(doc["entries"]) == 179
    code, out, err = cli(capsys, "cost", "--space", "mbconv", *SPACE_OPTS, "--arch",
                         "8x1(k3e1) 16x2(k5e3+se k3e1/hs) 24x1(k5e3)", "--latency-table", table,
                         "--latency-device", "cpu", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["predicted_latency_ms"] > 0 and doc["latency_ms"] > 0 and doc["latency"]["threads"] == 1


def test_profile_writes_layer_costs_that_proxylessnas_reads(tmp_path, capsys):
    costs = tmp_path / "costs.json"
    code, _, err = cli(capsys, "profile", "--space", "mbconv", *SPACE_OPTS, "--space-opt", "block_choice=op",
                       "--space-opt", 'se=[false]', "--space-opt", 'activations=["relu"]', "--repeats", "1",
                       "--warmup", "0", "-o", tmp_path / "table.json", "--layer-costs", costs)
    assert code == 0, err
    doc = json.loads(costs.read_text())
    assert set(doc) == {"s1_b1", "s2_b1", "s2_b2", "s3_b1", "s3_b2"} and "skip" in doc["s2_b2"]
    oneshot = pytest.importorskip("archsearch.strategies.oneshot")
    from archsearch.spaces import get_space
    from archsearch.strategies.oneshot.latency_loss import load_cost_table
    space = get_space("mbconv", **{**TINY, "block_choice": "op", "se": [False], "activations": ["relu"]})
    supernet = oneshot.build_supernet(space, DIGITS)
    assert set(load_cost_table(str(costs), supernet)) == set(doc)


@pytest.fixture(scope="module")
def pareto_run(tmp_path_factory):
    """A real (tiny) multi-objective search on the digits, with a latency constraint loose enough to pass and a
    parameter constraint that some architectures break (of the seeded first two, 5,058 and 5,714 parameters)."""
    run = tmp_path_factory.mktemp("runs") / "run"
    with pytest.raises(SystemExit) as e:
        main(["search", "--space", "mbconv", *SPACE_OPTS, "--strategy", "nsga2", "--strategy-opt", "population=2",
              "--trials", "4", "--epochs", "1", "--objective", "pareto", "--constraint", "latency_ms<=1000",
              "--constraint", "params<=5.5k", "--out", str(run), "--quiet", "--seed", "3"])
    assert e.value.code == 0
    return run


def test_constrained_pareto_search_show_and_pareto(pareto_run, tmp_path, capsys):
    code, out, err = cli(capsys, "show", pareto_run, "--json")
    assert code == 0, err
    doc = json.loads(out)
    # params are known before training: a candidate over the bound is rejected at ask time (stored as infeasible,
    # never trained, not counted against --trials), so the 4 trials are all trained and feasible
    assert doc["trials"].get("ok") == 4 and doc["trials"].get("infeasible")
    assert doc["config"]["objective"]["kind"] == "constrained"
    assert doc["config"]["evaluator"]["options"]["latency_device"] == "cpu"
    best = doc["best"]
    assert best["params"] <= 5_500 and best["latency_ms"] > 0 and best["flops"] > 0
    import archsearch
    trials = archsearch.load(pareto_run).trials
    assert ((trials["status"] == "ok") == (trials["params"] <= 5_500)).all()
    png = tmp_path / "front.png"
    code, out, err = cli(capsys, "pareto", pareto_run, "--json", "-o", png)
    assert code == 0, err
    front = json.loads(out)
    assert front["x"] == "min:latency_ms" and front["y"] == "max:val_accuracy" and png.is_file()
    assert 1 <= len(front["front"]) <= front["n_feasible"]


@pytest.mark.parametrize("args, message", [
    (["search", "--constraint", "latency<=5"], "unknown metric 'latency'"),
    (["search", "--constraint", "latency_ms=<5"], "bad constraint"),
    (["search", "--objective", "mnasnet"], "latency target"),
    (["search", "--space", "nb201", "--evaluator", "tabular", "--constraint", "latency_ms<=5"],
     "does not report latency_ms"),
    (["search", "--objective", "min:predicted_latency_ms"], "--latency-table"),
    (["profile", "--space", "nb201", "-o", "{tmp}/t.json"], "cannot be profiled"),
    (["profile", "--input", "3x224", "-o", "{tmp}/t.json"], "bad --input"),
    (["cost", "--arch", "mobilenetv3_large", "--latency-table", "{tmp}/missing.json"], "no such file"),
    (["export", "{tmp}", "--format", "onnx", "-o", "{tmp}/m.onnx"], "not an archsearch run"),
    (["pareto", "{tmp}"], "not an archsearch run"),
])
def test_bad_input_gets_one_line_and_exit_code_2(tmp_path, capsys, args, message):
    code, _, err = cli(capsys, *[a.format(tmp=tmp_path) for a in args])
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err


def test_profile_with_an_unknown_statistic_is_one_line(tmp_path, capsys):
    code, out, err = cli(capsys, "profile", "--space", "mbconv", *SPACE_OPTS, "--statistic", "mean",
                         "-o", tmp_path / "t.json")
    assert code == 2 and "--statistic" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "t.json").exists()
