"""Hardware-aware tabular benchmark (issue 10): metric tables joined to the NB201 table, --hardware, hypervolume
scoring, constrained incumbents, multi-objective and constraint-aware strategies, the CLI."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from archsearch import get_space
from archsearch.benchmark.hardware import TableScorer, _front_mask, run_hw_benchmark, write_hw_outputs
from archsearch.errors import UserError
from archsearch.evaluators import make_evaluator
from archsearch.strategies import strategy_options_for
from archsearch.evaluators.metrics_table import default_metrics_table_path
from archsearch.hardware.objectives import hypervolume, non_dominated_sort
from archsearch.objective import parse_objective
from archsearch.result import Observation
from archsearch.spaces.nb201 import from_string
from archsearch.strategies import make_strategy
from archsearch.strategies.bayesopt import GPSurrogate, SelectedSurrogate
from archsearch.strategies.encodings import Encoder
from archsearch.strategies.multiobjective import FeasibilityModel, hvi_samples, pareto_mask, unwarp

ARCH1 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
ARCH0 = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "nb201_latency.csv"
DEVICES = ("pixel3", "raspi4", "fpga", "eyeriss", "xeon_gold_6226", "titan_rtx")


@pytest.fixture(scope="module")
def space():
    return get_space("nb201")


@pytest.fixture(scope="module")
def pixel3(space):
    return make_evaluator("tabular", space, hardware="pixel3")


# ---- the evaluator -------------------------------------------------------------------------------------------
def test_hardware_latency_facts_from_the_data_readme(space, pixel3):
    m = pixel3.evaluate(from_string(ARCH1)).metrics
    assert m["latency_ms"] == pytest.approx(17.2381) and m["pixel3_ms"] == pytest.approx(17.2381)
    assert m["raspi4_ms"] == pytest.approx(54.7774) and m["val_accuracy"] == pytest.approx(82.834)
    pi = make_evaluator("tabular", space, hardware="raspi4")
    assert pi.evaluate(from_string(ARCH1)).metrics["latency_ms"] == pytest.approx(54.7774)
    assert pixel3.config()["hardware"] == "pixel3"
    again = make_evaluator("tabular", space, **pixel3.config())
    assert again.evaluate(from_string(ARCH0)).metrics == pixel3.evaluate(from_string(ARCH0)).metrics
    assert all(f"{d}_ms" in m for d in DEVICES)


def test_no_metrics_tables_and_unknown_hardware(space):
    bare = make_evaluator("tabular", space, metrics_tables=[])
    assert set(bare.evaluate(from_string(ARCH1)).metrics) == {"val_accuracy", "test_accuracy", "arch_index",
                                                              "train_seconds"}  # from the cost table, not hardware
    with pytest.raises(UserError, match="unknown hardware 'tpu'.*pixel3, raspi4, fpga"):
        make_evaluator("tabular", space, hardware="tpu")


def test_packaged_latency_table_matches_shared():
    path = default_metrics_table_path()
    assert path.name == "nb201_latency.csv.gz" and path.parent.name == "data"
    if not SHARED.is_file():
        pytest.skip("no ../shared checkout here")
    assert gzip.decompress(path.read_bytes()) == SHARED.read_bytes()


def test_custom_metrics_tables_join_by_arch_or_by_cell(tmp_path, space):
    by_arch = tmp_path / "energy.csv"
    by_arch.write_text("arch,energy_mj\n1,3.5\n0,\n")  # an empty field: not measured
    by_cell = tmp_path / "mem.csv.gz"
    by_cell.write_bytes(gzip.compress(f"arch,cellstr,mem_mb\n999,{ARCH1},12\n".encode()))
    ev = make_evaluator("tabular", space, metrics_tables=[str(by_arch), str(by_cell)], hardware="energy_mj")
    m1 = ev.evaluate(from_string(ARCH1)).metrics
    assert m1["energy_mj"] == 3.5 and m1["latency_ms"] == 3.5 and m1["mem_mb"] == 12.0
    m0 = ev.evaluate(from_string(ARCH0)).metrics
    assert "energy_mj" not in m0 and "latency_ms" not in m0 and "mem_mb" not in m0 and "pixel3_ms" not in m0


@pytest.mark.parametrize("text, message", [
    ("id,x\n1,2\n", "no 'arch' column"),
    ("arch,x\n1,fast\n", "line 2: x is 'fast', not a number"),
    ("arch,x\n1,2\n1,3\n", "arch 1 appears twice"),
    ("arch,val_accuracy\n1,2\n", "cannot be a metric name"),
    ("arch,cellstr\n1,x\n", "no metric columns"),
])
def test_bad_metrics_tables_are_one_line_errors(tmp_path, space, text, message):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(UserError, match=message) as info:
        make_evaluator("tabular", space, metrics_tables=[str(p)])
    assert "\n" not in str(info.value)


# ---- Pareto helpers ------------------------------------------------------------------------------------------
def test_front_helpers_agree_with_the_reference_implementations():
    rng = np.random.default_rng(0)
    for k in (2, 3):
        Y = rng.integers(0, 8, size=(60, k)).astype(float)  # many ties and duplicates
        want = set(non_dominated_sort(Y.tolist())[0])
        assert set(np.flatnonzero(pareto_mask(Y))) == want
        assert set(np.flatnonzero(_front_mask(Y))) == want


def test_hvi_samples_is_the_hypervolume_gained():
    rng = np.random.default_rng(1)
    front = rng.random((6, 2))
    front = front[pareto_mask(front)]
    ref = np.array([0.1, 0.05])
    S = rng.random((40, 3, 2)) * 1.2
    got = hvi_samples(S, front, ref)
    base = hypervolume(front, ref)
    for i in range(40):
        for j in range(3):
            assert got[i, j] == pytest.approx(hypervolume(np.vstack([front, S[i, j]]), ref) - base, abs=1e-12)
    assert hvi_samples(np.array([[[0.7]]]), np.array([[0.5]]), np.array([0.0]))[0, 0] == pytest.approx(0.2)


def test_unwarp_interpolates_and_extrapolates_linearly():
    raw = np.array([1.0, 2.0, 4.0, 4.0, 8.0])
    warped = np.array([-1.0, -0.5, 0.25, 0.25, 1.0])  # ties share a warped value
    assert unwarp(warped, warped, raw) == pytest.approx(raw)
    assert unwarp(np.array([0.0]), warped, raw)[0] == pytest.approx(2 + 2 * 0.5 / 0.75)
    assert unwarp(np.array([2.0]), warped, raw, tail=1)[0] == pytest.approx(8 + 4 / 0.75)
    assert unwarp(np.array([-2.0]), warped, raw, tail=1)[0] == pytest.approx(1 - 2.0)


def test_table_scorer_reference_and_true_front(pixel3):
    sc = TableScorer(pixel3, parse_objective("val_accuracy,latency_ms"))
    vals = np.array([m["val_accuracy"] for m in pixel3._metrics.values()])
    lats = np.array([m["latency_ms"] for m in pixel3._metrics.values()])
    assert sc.units(sc.reference) == pytest.approx([np.median(vals), lats.max()])
    assert sc.hv_fraction(sc.true_front) == pytest.approx(1.0)
    assert max(v for v, _ in (sc.units(p) for p in sc.true_front)) == pytest.approx(vals.max())
    cons = TableScorer(pixel3, parse_objective("val_accuracy", ["latency_ms<=10.676"]))
    assert cons.best_feasible_test == pytest.approx(87.39) and 0.45 < cons.feasible_share < 0.55


# ---- strategies ----------------------------------------------------------------------------------------------
# ---- the latency model ----------------------------------------------------------------------------------------
def _r2(pred, y):
    return 1.0 - float(((pred - y) ** 2).sum() / ((y - y.mean()) ** 2).sum())


def test_additive_gp_recovers_an_additive_latency_from_few_samples(space):
    """A per-(edge, op) latency table (FBNet's model of latency): 40 samples pin down the other cells' latencies
    with the linear kernel; the similarity kernel alone, on the same data, is clearly worse."""
    rng = np.random.default_rng(0)
    cost = {(label, op): float(rng.uniform(0.1, 3.0)) for label in space.labels
            for op in space.decision(label).options}
    archs = list({space.sample(rng): None for _ in range(400)})
    y = np.array([sum(cost[(label, a[label])] for label in space.labels) for a in archs])
    enc = Encoder(space)
    additive, plain = GPSurrogate(enc, "standard", linear=True), GPSurrogate(enc, "standard")
    r2 = {}
    for name, m in (("additive", additive), ("plain", plain)):
        m.update(archs[:40], y[:40])
        r2[name] = _r2(m.predict(archs[40:])[0], y[40:])
    assert r2["additive"] > 0.99 and r2["plain"] < 0.95, r2
    chooser = SelectedSurrogate(enc)
    chooser.update(archs[:40], y[:40])
    assert chooser.choice == "additive" and not chooser.warped and np.array_equal(chooser.y, y[:40])


def test_selected_surrogate_on_the_table_latency_additive_accuracy_copula(space):
    """On the measured table: FPGA latency (a sum of per-op costs on that device) is predicted almost exactly
    from 60 cells and gets the additive model; val accuracy (not additive, a long tail) keeps the copula GP."""
    ev = make_evaluator("tabular", space, hardware="fpga")
    rng = np.random.default_rng(3)
    archs = list({space.sample(rng): None for _ in range(360)})
    ms = [ev.evaluate(a).metrics for a in archs]
    lat, acc = np.array([m["latency_ms"] for m in ms]), np.array([m["val_accuracy"] for m in ms])
    enc = Encoder(space)
    latency, accuracy = SelectedSurrogate(enc), SelectedSurrogate(enc)
    latency.update(archs[:60], -lat[:60])
    accuracy.update(archs[:60], acc[:60])
    assert latency.choice == "additive" and accuracy.choice == "copula"
    assert _r2(-latency.predict(archs[60:])[0], lat[60:]) > 0.98
    with pytest.raises(ValueError, match="models must be among"):
        SelectedSurrogate(enc, ("linear",))
    with pytest.raises(ValueError, match="models must be 'auto', 'copula' or 'additive'"):
        make_strategy("bo-ehvi", space, models="ridge")


def test_feasibility_model_with_the_additive_latency_model_classifies_better(space):
    """P(latency_ms <= bound) from 50 FPGA cells: with the additive model the held-out cells are classified
    almost without error, and the probabilities' Brier score is about half the plain GP's (used before)."""
    ev = make_evaluator("tabular", space, hardware="fpga")
    rng = np.random.default_rng(5)
    archs = list({space.sample(rng): None for _ in range(450)})
    results = [ev.evaluate(a) for a in archs]
    bound = float(np.median([r.metrics["latency_ms"] for r in results]))
    obj = parse_objective("val_accuracy", [f"latency_ms<={bound}"])
    truth = np.array([obj.score(r).feasible for r in results[50:]])
    correct, brier = {}, {}
    for additive in (True, False):
        fm = FeasibilityModel(Encoder(space), obj.constraints, additive=additive)
        for a, r in zip(archs[:50], results[:50]):
            sc = obj.score(r)
            fm.add(Observation(a, sc.value, None, sc.feasible, r.metrics))
        p = fm.probability(archs[50:], [])
        correct[additive], brier[additive] = float(((p > 0.5) == truth).mean()), float(((p - truth) ** 2).mean())
    assert correct[True] > 0.97 and brier[True] < 0.6 * brier[False], (correct, brier)


def _mo_run(name, space, ev, objective, n, seed, batch=1, **options):
    s = make_strategy(name, space, seed=seed, **options)
    trace = []
    for t in range(0, n, batch):
        asked = [s.ask() for _ in range(batch)]
        for arch in reversed(asked):
            r = ev.evaluate(arch)
            sc = objective.score(r)
            s.tell(Observation(arch, sc.value, sc.values, sc.feasible, r.metrics, t))
            trace.append(arch)
    return s, trace


@pytest.mark.parametrize("name, options", [("bo-ehvi", {}), ("bo-ehvi", {"units": "raw", "refine": 2, "reference": "observed"}),
                                           ("bo-ehvi", {"models": "additive"}), ("bo-ehvi", {"models": "auto"}),
                                           ("bo-ehvi", {"ref_point": [72.3, -30.0]}),
                                           ("bo-parego", {}), ("local-pareto", {}), ("nsga2", {})])
def test_multiobjective_strategies_are_deterministic_and_async(name, options, space, pixel3):
    obj = parse_objective("val_accuracy,latency_ms")
    _, a = _mo_run(name, space, pixel3, obj, 20, seed=1, batch=3, **options)
    _, b = _mo_run(name, space, pixel3, obj, 20, seed=1, batch=3, **options)
    _, c = _mo_run(name, space, pixel3, obj, 20, seed=2, batch=3, **options)
    assert a == b and a != c and all(space.contains(x) for x in a)
    assert len(set(a)) == len(a) or name == "nsga2"  # model-based and local search never repeat


def test_bo_ehvi_aims_at_the_front_above_its_reference_point(space):
    """A reference point demanding high accuracy and one demanding low latency send bo-ehvi to different ends of
    the front (the point is used, in the models' units); a point of the wrong length is refused."""
    fpga = make_evaluator("tabular", space, hardware="fpga")
    obj = parse_objective("val_accuracy,latency_ms")
    asked = {}
    for end, ref in {"accurate": [84.0, -8.68], "fast": [60.0, -1.7]}.items():
        s, trace = _mo_run("bo-ehvi", space, fpga, obj, 30, seed=0, ref_point=ref)
        m = [fpga.evaluate(a).metrics for a in trace[10:]]  # after the random start
        asked[end] = (np.mean([x["val_accuracy"] for x in m]), np.mean([x["latency_ms"] for x in m]))
    assert asked["accurate"][0] > asked["fast"][0] + 2 and asked["accurate"][1] > asked["fast"][1] + 0.5, asked
    with pytest.raises(ValueError, match="ref_point has 3 values for 2 objectives"):
        _mo_run("bo-ehvi", space, fpga, obj, 12, seed=0, ref_point=[1, 2, 3])


def test_the_benchmark_tells_its_reference_point_to_strategies_that_take_one():
    obj = parse_objective("val_accuracy,latency_ms")
    assert strategy_options_for("bo-ehvi", obj, [72.3, -8.7]) == {"ref_point": [72.3, -8.7]}
    assert strategy_options_for("bo-ehvi", obj) == {} and strategy_options_for("nsga2", obj, [72.3, -8.7]) == {}


def test_constraint_aware_strategies_avoid_infeasible_architectures(space, pixel3):
    """With the constraint modelled, bo-constrained spends fewer queries on infeasible cells than random search
    and than plain bo (same seeds: deterministic)."""
    obj = parse_objective("val_accuracy", ["latency_ms<=10.676"])
    share = {}
    for name, opts in [("random", {}), ("bo", {}), ("bo-constrained", {"constraints": ["latency_ms<=10.676"]})]:
        n = 0
        for seed in range(2):
            s, trace = _mo_run(name, space, pixel3, obj, 40, seed=seed, **opts)
            n += sum(not o.feasible for o in s.history)
        share[name] = n / 80
    assert share["bo-constrained"] < share["random"] - 0.1 and share["bo-constrained"] < share["bo"], share


def test_optuna_tpe_is_told_constraint_violations(space, pixel3):
    pytest.importorskip("optuna")
    obj = parse_objective("val_accuracy", ["latency_ms<=10.676"])
    s, _ = _mo_run("optuna-tpe", space, pixel3, obj, 12, seed=0, constraints=["latency_ms<=10.676"])
    trials = s.study.get_trials(deepcopy=False)
    assert all(t.state.name == "COMPLETE" for t in trials)  # infeasible ones too, with their violation
    viol = [list(t.constraints.values())[0] if hasattr(t, "constraints") else
            t.user_attrs["archsearch_constraints"][0] for t in trials]
    lat = [o.metrics["latency_ms"] for o in s.history]
    assert viol == pytest.approx([x - 10.676 for x in lat])


# ---- the benchmark -------------------------------------------------------------------------------------------
def test_multiobjective_benchmark_scores_hypervolume(tmp_path):
    res = run_hw_benchmark(["local-pareto", "bo-ehvi"], hardware="fpga", seeds=2, trials=25, workers=1)
    assert list(res.runs) == ["random", "local-pareto", "bo-ehvi"] and res.checkpoints == [25]
    for runs in res.runs.values():
        for r in runs:
            assert np.all(np.diff(r.hv_fraction) >= -1e-12) and 0 < r.hv_fraction[-1] <= 1 + 1e-9
            assert r.hv_fraction[-1] == pytest.approx(res.scorer.hv_fraction(np.array(r.front) * [1, -1]))
    paths = write_hw_outputs(res, tmp_path / "out", command="archsearch benchmark ...")
    data = json.loads(paths["json"].read_text())
    assert data["mode"] == "multi-objective" and data["hardware"] == "fpga"
    assert data["strategies"]["bo-ehvi"]["25"]["hypervolume_fraction"]["mean"] > 0
    assert paths["plot"].stat().st_size > 10_000 and "hypervolume fraction" in paths["markdown"].read_text()


def test_constrained_benchmark_reports_feasible_incumbent_and_infeasible_share(tmp_path, pixel3):
    res = run_hw_benchmark(["bo-constrained"], objective="val_accuracy", constraints=["latency_ms<=10.676"],
                           hardware="pixel3", seeds=2, trials=20, workers=1)
    feasible_tests = {m["test_accuracy"] for m in pixel3._metrics.values() if m["latency_ms"] <= 10.676}
    for runs in res.runs.values():
        for r in runs:
            assert r.test_accuracy[-1] in feasible_tests and 0 <= r.infeasible_share[-1] <= 1
    s = res.summary()["bo-constrained"]["20"]
    assert set(s) == {"test_accuracy", "infeasible_share"}
    with pytest.raises(UserError, match="does not report latency_ms.*--hardware"):
        run_hw_benchmark(["random"], objective="val_accuracy,latency_ms", seeds=1, trials=2, workers=1)


def cli(capsys, *args):
    """The console entry point in this process (no interpreter start-up per call): (exit code, stdout, stderr)."""
    from archsearch.cli import main

    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


def test_cli_benchmark_and_search_on_the_table(tmp_path, capsys):
    code, out, err = cli(capsys, "benchmark", "--objectives", "val_accuracy,latency_ms", "--hardware", "titan_rtx",
                         "--strategies", "nsga2", "--seeds", "1", "--trials", "12", "--workers", "1", "--out",
                         tmp_path / "b")
    assert code == 0, err
    assert "Hypervolume" in out and (tmp_path / "b" / "fronts.png").is_file()
    assert json.loads((tmp_path / "b" / "results.json").read_text())["command"].startswith("archsearch benchmark")
    code, _, err = cli(capsys, "benchmark", "--objectives", "val_accuracy,latency_ms", "--hardware", "tpu",
                       "--seeds", "1")
    assert code == 2 and err.startswith("error: unknown hardware 'tpu'"), err
    code, _, err = cli(capsys, "search", "--space", "nb201", "--evaluator", "tabular", "--hardware", "pixel3",
                       "--constraint", "latency_ms<=10.676", "--strategy", "bo-constrained", "--trials", "12",
                       "--out", tmp_path / "r", "--quiet")
    assert code == 0, err
    cfg = json.loads((tmp_path / "r" / "best.json").read_text())
    assert cfg["metrics"]["latency_ms"] <= 10.676 and cfg["metrics"]["pixel3_ms"] == cfg["metrics"]["latency_ms"]
    code, _, err = cli(capsys, "search", "--space", "nb201", "--evaluator", "tabular", "--constraint",
                       "latency_ms<=10", "--trials", "2", "--out", tmp_path / "x", "--quiet")
    assert code == 2 and "does not report latency_ms" in err, err
    mo = ["search", "--space", "nb201", "--evaluator", "tabular", "--hardware", "fpga", "--objective",
          "pareto:val_accuracy,min:latency_ms", "--trials", "12", "--quiet"]
    code, _, err = cli(capsys, *mo, "--strategy", "bo-ehvi", "--reference-point", "72,8.7", "--out", tmp_path / "m")
    assert code == 0, err
    from archsearch.study import Study
    assert Study.resume(tmp_path / "m").strategy.ref_point.tolist() == [72.0, -8.7]
    for args, message in [(["--strategy", "nsga2", "--reference-point", "72,8.7"], "does not take a reference"),
                          (["--strategy", "bo-ehvi", "--reference-point", "72"], "give 2 numbers"),
                          (["--strategy", "bo-ehvi", "--strategy-opt", "ref_point=[1,2,3]"], "give 2 numbers")]:
        code, _, err = cli(capsys, *mo, *args, "--out", tmp_path / "n")
        assert code == 2 and err.startswith("error: ") and message in err and len(err.splitlines()) == 1, err
