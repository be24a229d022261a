"""Objectives (metric, MnasNet reward, constraints, Pareto), their parsing and storage, Pareto utilities, and
the multi-objective strategies (nsga2, Optuna's samplers) in a study."""
from __future__ import annotations

import math

import numpy as np
import pytest

from archsearch.errors import UserError
from archsearch.hardware.objectives import (Constraint, crowding_distance, dominates, hypervolume, mnas_reward,
    non_dominated_sort, pareto_front, parse_constraint)
from archsearch.objective import (ConstrainedObjective, MetricObjective, MnasNetObjective, ParetoObjective,
    objective_from_config, parse_objective)
from archsearch.result import Observation, Result
from archsearch.spaces import get_space
from archsearch.strategies import make_strategy
from archsearch.study import Budget, Study


# ---- constraints ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, want", [
    ("latency_ms<=5", Constraint("latency_ms", "<=", 5.0)), (" params <= 1.5M ", Constraint("params", "<=", 1.5e6)),
    ("flops<3e8", Constraint("flops", "<", 3e8)), ("val_accuracy>=90", Constraint("val_accuracy", ">=", 90.0)),
    ("macs<=300k", Constraint("macs", "<=", 3e5))])
def test_parse_constraint(text, want):
    c = parse_constraint(text)
    assert c == want and parse_constraint(c.spec()) == c


@pytest.mark.parametrize("text, message", [
    ("latency<=5", "unknown metric 'latency'"), ("latency_ms=<5", "bad constraint"), ("params<=", "bad constraint"),
    ("<=5", "bad constraint"), ("params<=5Q", "bad constraint"), ("", "bad constraint")])
def test_bad_constraints_are_one_line_user_errors(text, message):
    with pytest.raises(UserError, match=message) as e:
        parse_constraint(text)
    assert "\n" not in str(e.value)


def test_constraint_verdicts():
    c = Constraint("latency_ms", "<=", 5.0)
    assert c.satisfied({"latency_ms": 5.0}) and not c.satisfied({"latency_ms": 5.5})
    assert c.satisfied({}) is None and c.violation({"latency_ms": 7.5}) == pytest.approx(0.5)


# ---- MnasNet reward --------------------------------------------------------------------------------------------
def test_mnas_reward_soft_and_hard():
    assert mnas_reward(75.0, 80.0, 80.0) == 75.0
    # soft w = -0.07: twice as slow costs about 5% of the reward, twice as fast gains about 5%
    assert mnas_reward(75.0, 160.0, 80.0) == pytest.approx(75.0 * 2 ** -0.07)
    assert mnas_reward(75.0, 40.0, 80.0) == pytest.approx(75.0 * 2 ** 0.07)
    # hard: alpha = 0 (no gain under the target), beta = -1 (reward divided by the overshoot)
    assert mnas_reward(75.0, 40.0, 80.0, 0.0, -1.0) == 75.0
    assert mnas_reward(75.0, 160.0, 80.0, 0.0, -1.0) == pytest.approx(37.5)


# ---- objectives ------------------------------------------------------------------------------------------------
def result(**metrics):
    return Result(metrics=metrics)


def test_objective_scores():
    r = result(val_accuracy=90.0, latency_ms=10.0, params=2e6)
    assert MetricObjective().score(r).value == 90.0
    assert MetricObjective("latency_ms", False).score(r).value == -10.0
    assert MnasNetObjective(5.0).score(r).value == pytest.approx(90.0 * 2 ** -0.07)
    p = ParetoObjective(parse_objective("pareto").goals).score(r)
    assert p.status == "ok" and p.values == (90.0, -10.0) and p.value == 90.0
    con = parse_objective("pareto", ["latency_ms<=5"]).score(r)
    assert con.status == "infeasible" and con.values == (90.0, -10.0) and not con.feasible
    assert parse_objective(None, ["latency_ms<=50", "params<=3M"]).score(r).status == "ok"
    assert parse_objective(None, ["flops<=1"]).score(r).status == "failed"  # not measured: cannot be judged
    assert parse_objective("mnasnet:5").score(result(val_accuracy=90.0)).status == "failed"
    assert parse_objective(None, ["params<=1"]).score(Result.failure("boom")).status == "failed"


@pytest.mark.parametrize("text, constraints", [
    (None, []), ("min:latency_ms", []), ("mnasnet:80", []), ("mnasnet:80,hard", ["params<=5M"]),
    ("mnasnet:target=3e8,w=-0.1,latency=flops", []), ("pareto", ["latency_ms<=5"]),
    ("pareto:val_accuracy,params,min:latency_ms", [])])
def test_objectives_round_trip_through_their_config(text, constraints):
    obj = parse_objective(text, constraints)
    again = objective_from_config(obj.config())
    assert again == obj and again.describe() == obj.describe()


def test_parse_objective_details_and_errors():
    hard = parse_objective("mnasnet:80,hard")
    assert (hard.alpha, hard.beta, hard.target) == (0.0, -1.0, 80.0)
    assert parse_objective("latency_ms").maximize  # a bare name is maximised, as it always was
    assert isinstance(parse_objective("val_accuracy,min:params"), ParetoObjective)
    assert isinstance(parse_objective("pareto", ["params<=1M"]), ConstrainedObjective)
    assert parse_objective("pareto", ["params<=1M"]).metrics() == ("val_accuracy", "latency_ms", "params")
    for bad, msg in [("mnasnet", "target"), ("mnasnet:fast", "not a number"), ("mnasnet:5,speed=2", "unknown"),
                     ("pareto:val_accuracy", "at least two"), ("max:", "bad objective"), ("mnasnet:-1", "positive")]:
        with pytest.raises(UserError, match=msg):
            parse_objective(bad)


# ---- Pareto utilities --------------------------------------------------------------------------------------------
def test_dominance_and_non_dominated_sort():
    pts = [(1, 5), (2, 4), (3, 3), (2, 2), (1, 1), (3, 3)]
    assert dominates((2, 4), (2, 2)) and not dominates((1, 5), (2, 4)) and not dominates((3, 3), (3, 3))
    fronts = non_dominated_sort(pts)
    assert fronts[0] == [0, 1, 2, 5] and fronts[1] == [3] and fronts[2] == [4]
    assert pareto_front(pts) == [0, 1, 2, 5] and pareto_front([]) == []
    crowd = crowding_distance(pts, [0, 1, 2])
    assert math.isinf(crowd[0]) and math.isinf(crowd[2]) and crowd[1] == pytest.approx(2.0)


def test_hypervolume_exact_in_2d_and_3d():
    assert hypervolume([(1, 3), (2, 2), (3, 1)], (0, 0)) == pytest.approx(6.0)
    assert hypervolume([(1, 3), (2, 2), (3, 1), (1, 1), (-1, 5)], (0, 0)) == pytest.approx(6.0)
    assert hypervolume([], (0, 0)) == 0.0
    rng = np.random.default_rng(0)
    pts = rng.random((6, 3))
    grid = np.stack(np.meshgrid(*[np.linspace(0, 1, 81)[:-1] + 1 / 160] * 3, indexing="ij"), -1).reshape(-1, 3)
    covered = np.zeros(len(grid), bool)
    for p in pts:
        covered |= (grid <= p).all(1)
    assert hypervolume(pts, (0, 0, 0)) == pytest.approx(covered.mean(), abs=0.01)


# ---- multi-objective strategies ------------------------------------------------------------------------------------
def two_objectives(space, arch, a, b):
    """A synthetic trade-off: agreement with target ``a`` (maximised) against agreement with target ``b``."""
    f1 = np.mean([arch[k] == a[k] for k in space.labels])
    f2 = np.mean([arch[k] == b[k] for k in space.labels])
    return float(f1), float(f2)


def run_mo(name, space, a, b, n, seed, **options):
    s = make_strategy(name, space, seed=seed, **options)
    pts = []
    for t in range(n):
        arch = s.ask()
        v = two_objectives(space, arch, a, b)
        s.tell(Observation(arch, v[0], v, trial=t))
        pts.append(v)
    return hypervolume(pts, (0, 0)), s


def test_nsga2_front_beats_random_search_by_hypervolume():
    space = get_space("macro", layers=4)
    hv = {"nsga2": [], "random": []}
    for seed in range(5):
        rng = np.random.default_rng(100 + seed)
        a, b = space.sample(rng), space.sample(rng)
        hv["nsga2"].append(run_mo("nsga2", space, a, b, 150, seed)[0])
        hv["random"].append(run_mo("random", space, a, b, 150, seed)[0])
    assert np.mean(hv["nsga2"]) > np.mean(hv["random"]) + 0.05, hv


def test_nsga2_prefers_feasible_and_reports_its_front():
    space = get_space("nb201")
    s = make_strategy("nsga2", space, seed=0, population=4)
    archs = [s.ask() for _ in range(6)]
    for i, arch in enumerate(archs):
        s.tell(Observation(arch, float(i), (float(i), -float(i)), feasible=i < 3))
    assert all(o.feasible for o in s.population[:3])
    assert {o.value for o in s.front()} == {0.0, 1.0, 2.0}
    assert s.best().value == 2.0
    with pytest.raises(ValueError):
        make_strategy("nsga2", space, population=1)


@pytest.mark.parametrize("name", ["optuna-nsgaii", "optuna-tpe"])
def test_optuna_samplers_switch_to_multi_objective(name):
    space = get_space("nb201")
    _, s = run_mo(name, space, *[space.sample(np.random.default_rng(i)) for i in (1, 2)], 20, 0)
    assert s.n_objectives == 2 and len(s.study.directions) == 2
    assert len(s.study.best_trials) >= 1
    with pytest.raises(ValueError, match="single-objective"):
        arch = s.ask()
        s.tell(Observation(arch, 1.0))


# ---- in a study ------------------------------------------------------------------------------------------------------
class CostlyEvaluator:
    """Synthetic accuracy and a 'latency' that grows with the number of conv ops (nb201)."""

    def __init__(self, space):
        self.space = space

    def config(self):
        return {}

    def evaluate(self, arch, seed=0, fidelity=None):
        convs = sum("conv" in str(v) for v in arch.values())
        return Result(metrics={"val_accuracy": 50.0 + 8.0 * convs + (seed % 7), "latency_ms": 1.0 + convs,
                               "params": 1000.0 * convs})


def test_constrained_pareto_study_records_infeasible_trials_and_resumes(tmp_path):
    from archsearch.evaluators import EVALUATORS, register_evaluator
    if "costly" not in EVALUATORS:
        register_evaluator("costly")(CostlyEvaluator)
    obj = parse_objective("pareto", ["latency_ms<=4"])
    study = Study.create(space="nb201", strategy="nsga2", evaluator="costly", budget=Budget(trials=30), seed=1,
                         strategy_options={"population": 6}, objective=obj, run_dir=tmp_path / "run")
    summary = study.run()
    statuses = {r.status for r in summary.trials}
    assert statuses == {"ok", "infeasible"}
    for r in summary.trials:
        assert (r.status == "ok") == (r.metrics["latency_ms"] <= 4)
        assert r.values is not None and r.values[1] == -r.metrics["latency_ms"]
    assert summary.best.metrics["latency_ms"] <= 4
    again = Study.resume(tmp_path / "run")
    assert again.objective == obj
