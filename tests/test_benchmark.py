"""`archsearch benchmark` (results.json shape, seeding, errors) and the Optuna strategy adapter."""
from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from optuna.trial import TrialState
from torch import nn
from typer.testing import CliRunner

from archsearch import get_space, space_from_function
from archsearch.benchmark.tabular import checkpoints, run_benchmark, write_outputs
from archsearch.cli.benchmark import register
from archsearch.errors import UserError
from archsearch.evaluators import make_evaluator
from archsearch.result import Observation
from archsearch.strategies import make_strategy


@pytest.fixture(scope="module")
def nb201():
    return get_space("nb201")


@pytest.fixture(scope="module")
def table(nb201):
    return make_evaluator("tabular", nb201)


# ---- benchmark ---------------------------------------------------------------------------------------------
def test_checkpoints():
    assert checkpoints(150) == [25, 50, 100, 150]
    assert checkpoints(120) == [25, 50, 100, 120]
    assert checkpoints(20) == [20]


def test_results_json_shape(tmp_path):
    res = run_benchmark(["evolution"], seeds=2, trials=20, workers=1)
    paths = write_outputs(res, tmp_path / "out", command="archsearch benchmark ...")
    data = json.loads(paths["json"].read_text())
    assert data["seeds"] == 2 and data["trials"] == 20 and data["table"].endswith(".csv.gz")
    assert list(data["strategies"]) == ["random", "evolution"]  # random search is always the baseline
    for per in data["strategies"].values():
        assert list(per) == ["20"]
        assert set(per["20"]) == {"mean", "std"}
        assert 80 < per["20"]["mean"] < 90 and per["20"]["std"] >= 0
    assert len(data["curves"]["random"]["mean"]) == 20
    assert set(data["strategy_seconds_per_query"]) == {"random", "evolution"}
    assert paths["plot"].stat().st_size > 1000
    assert "| random |" in paths["markdown"].read_text()


def test_same_seeds_same_numbers_and_incumbent_by_validation(nb201, table):
    a = run_benchmark(["random"], seeds=3, trials=30, workers=1)
    b = run_benchmark(["random"], seeds=3, trials=30, workers=1)
    assert np.array_equal(a.curves["random"], b.curves["random"])
    # the curve reports the test accuracy of the best-by-validation architecture, never the best test accuracy
    s = make_strategy("random", nb201, seed=1)
    results = [table.evaluate(s.ask()) for _ in range(30)]
    best = max(range(30), key=lambda i: (results[i].metrics["val_accuracy"], -i))
    assert a.curves["random"][1, -1] == results[best].metrics["test_accuracy"]


def test_worker_processes_give_the_same_numbers():
    pooled = run_benchmark(["evolution"], seeds=2, trials=10, workers=2)
    inline = run_benchmark(["evolution"], seeds=2, trials=10, workers=1)
    assert pooled.workers == 2 and inline.workers == 1
    for name in ("random", "evolution"):
        assert np.array_equal(pooled.curves[name], inline.curves[name])


@pytest.mark.parametrize("kwargs, message", [
    ({"strategies": ["random", "evolutoin"]}, "did you mean 'evolution'"),
    ({"strategies": ["random"], "seeds": 0}, "positive"),
    ({"strategies": ["random"], "space": "nope"}, "unknown space"),
    ({"strategies": ["random"], "space": "macro"}, "nb201"),
    ({"strategies": ["random"], "table": "/no/such/table.csv"}, "no such file"),
])
def test_benchmark_user_errors(kwargs, message):
    with pytest.raises(UserError, match=message):
        run_benchmark(**{"seeds": 1, "trials": 5, "workers": 1, **kwargs})


def test_cli_command(tmp_path):
    app = typer.Typer()
    register(app)

    @app.callback()
    def main() -> None:
        """test app"""

    out = tmp_path / "bench"
    r = CliRunner().invoke(app, ["benchmark", "--strategies", "evolution", "--seeds", "2", "--trials", "10",
                                 "--workers", "1", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "evolution" in r.output and (out / "results.json").is_file() and (out / "curves.png").is_file()
    assert "--seeds 2 --trials 10" in json.loads((out / "results.json").read_text())["command"]
    bad = CliRunner().invoke(app, ["benchmark", "--trials", "0", "--out", str(out)])
    assert isinstance(bad.exception, UserError)


# ---- the Optuna adapter ------------------------------------------------------------------------------------
def _tiny(c, shape, **_):
    c.layer("op", {"a": nn.Identity, "b": nn.Identity})
    c.inputs("in", 3, 2)
    c.value("w", [8, 16, 32])
    return nn.Identity()


def _run(strategy, evaluator, n):
    for t in range(n):
        arch = strategy.ask()
        r = evaluator.evaluate(arch)
        strategy.tell(Observation(arch, r.metrics["val_accuracy"], metrics=r.metrics, trial=t))


@pytest.mark.parametrize("name", ["optuna-tpe", "optuna-random", "optuna-nsgaii"])
def test_optuna_asks_valid_archs_and_is_deterministic(nb201, table, name):
    a, b = make_strategy(name, nb201, seed=3), make_strategy(name, nb201, seed=3)
    _run(a, table, 15)
    _run(b, table, 15)
    assert all(nb201.contains(o.arch) for o in a.history)
    assert [o.arch for o in a.history] == [o.arch for o in b.history]
    c = make_strategy(name, nb201, seed=4)
    _run(c, table, 15)
    assert [o.arch for o in a.history] != [o.arch for o in c.history]


def test_optuna_maps_inputs_and_values():
    space = space_from_function(_tiny, name="tiny")
    s = make_strategy("optuna-tpe", space, seed=0)
    archs = [s.ask() for _ in range(20)]
    assert all(space.contains(a) for a in archs)
    assert {a["in"] for a in archs} == {(0, 1), (0, 2), (1, 2)} and {a["w"] for a in archs} <= {8, 16, 32}


def test_optuna_three_asks_in_flight_and_repeats():
    space = space_from_function(_tiny, name="tiny")  # 18 archs: repeats are likely
    s = make_strategy("optuna-tpe", space, seed=0, n_startup_trials=3)
    for rnd in range(8):
        asked = [s.ask() for _ in range(3)]
        assert s.n_pending == 3
        for i, arch in enumerate(reversed(asked)):  # told in another order than asked
            value = None if (rnd, i) == (0, 0) else float(arch["w"] + len(arch["in"]))
            s.tell(Observation(arch, value))
        assert s.n_pending == 0 and not s._open
    states = [t.state for t in s.study.trials]
    assert len(states) == 24 and states.count(TrialState.FAIL) == 1 and states.count(TrialState.COMPLETE) == 23
    assert len({a for a in (o.arch for o in s.history)}) < 24  # the same arch was asked more than once
    # a tell without an ask (a resumed run replaying history) becomes a finished trial
    s.tell(Observation(space.sample(np.random.default_rng(1)), 99.0))
    assert s.study.best_value == 99.0


def test_optuna_unknown_option():
    with pytest.raises(TypeError, match="optuna-tpe"):
        make_strategy("optuna-tpe", get_space("nb201"), seed=0, no_such_option=1)


def test_the_simulated_clock_charges_each_query_its_training_time_and_stops_at_the_budget():
    from archsearch.benchmark.tabular import run_benchmark
    from archsearch.evaluators import make_evaluator
    from archsearch.spaces import get_space
    ev = make_evaluator("tabular", get_space("nb201"))
    sp = get_space("nb201")
    resnet = sp.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")
    assert ev.evaluate(resnet).cost_seconds == pytest.approx(12 * 10.8482)  # the cell's 12-epoch training time
    a = run_benchmark(["random"], seeds=2, trials=1000, workers=1, seconds=3000)
    b = run_benchmark(["random"], seeds=2, trials=1000, workers=1, seconds=3000)
    clocks = a.clocks["random"]
    assert np.nanmax(clocks) <= 3000 and 15 < a.queries_within("random") < 40  # ~110 s a query
    assert np.array_equal(np.nan_to_num(clocks), np.nan_to_num(b.clocks["random"]))  # no wall time involved
    assert a.summary_seconds() == b.summary_seconds()
