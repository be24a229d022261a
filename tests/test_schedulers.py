"""Multi-fidelity schedulers (ASHA, SH, Hyperband, median stopping) and their study: rungs, promotion from the
checkpoint (never retrained), learning curves, resume after SIGKILL mid-rung, constraints checked at ask time,
and the time budget checked inside epochs."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from archsearch.errors import UserError
from archsearch.evaluators import EvaluatorSpec
from archsearch.schedulers import ASHA, Hyperband, MedianStopping, SuccessiveHalving, make_scheduler, rung_levels
from archsearch.storage import RunStore
from archsearch.study import Budget, Study, summarize

SPACE = {"layers": 2, "filters": [8, 16], "stem_channels": 8}


def test_rung_levels():
    assert rung_levels(1, 9, 3) == [1, 3, 9]
    assert rung_levels(1, 10, 3) == [1, 3, 9, 10]
    assert rung_levels(2, 8, 2) == [2, 4, 8]
    assert rung_levels(5, 5, 3) == [5]
    with pytest.raises(UserError):
        rung_levels(0, 9, 3)
    with pytest.raises(UserError):
        rung_levels(1, 9, 1)


def _feed(s, values, fid=1):
    for t, v in enumerate(values):
        d = s.next(True, t)
        assert d.trial is None and d.fidelity == fid
        s.started(t, d.fidelity, d.bracket)
        s.report(t, fid, (v, 0.0))


def test_asha_promotes_the_top_third_as_soon_as_it_can():
    s = ASHA(9, min_epochs=1, eta=3)
    _feed(s, [10.0, 30.0])
    assert s.next(True, 2).trial is None  # two results: the top 1/3 of 2 is nobody
    s.started(2, 1)
    s.report(2, 1, (20.0, 0.0))
    d = s.next(True, 3)
    assert (d.trial, d.fidelity) == (1, 3)  # the best of three goes on to 3 epochs, no barrier
    s.started(1, 3)
    assert s.next(True, 3).trial is None
    assert s.next(False, 3) is None  # no new trials allowed and nothing to promote: wait


def test_asha_promotes_at_most_a_third_of_a_rung_when_proposals_keep_improving():
    """An improving searcher: every new trial is the best so far, so the top-1/eta rule alone would promote
    each one; the quota keeps the promoted share of the rung at floor(n/eta)."""
    s = ASHA(9, min_epochs=1, eta=3)
    promoted = []
    for t in range(30):
        s.started(t, 1)
        s.report(t, 1, (float(t), 0.0))
        while (d := s.next(False, t + 1)) is not None:
            promoted.append(d.trial)
            s.started(d.trial, d.fidelity, d.bracket)
        assert len([p for p in promoted]) <= (t + 1) // 3
    assert len(promoted) == 10 and promoted[-1] == 29  # the latest, best trial still goes on
    assert promoted[:3] == [2, 5, 8]


def test_asha_never_promotes_a_failed_trial_and_breaks_ties_by_loss():
    s = ASHA(9, min_epochs=1, eta=3)
    for t, key in enumerate([(50.0, -0.9), (50.0, -0.1), (10.0, 0.0)]):
        s.started(t, 1)
        s.report(t, 1, key)
    assert s.next(True, 3).trial == 1  # equal accuracy: the lower validation loss wins
    s2 = ASHA(9, min_epochs=1, eta=3)
    _feed(s2, [90.0, 10.0, 20.0])
    s2.fail(0)
    assert s2.next(True, 3).trial is None


def test_successive_halving_waits_for_the_whole_rung():
    s = SuccessiveHalving(9, min_epochs=1, eta=3)
    assert s.round_size == 9
    for t in range(9):
        d = s.next(True, t)
        assert d.trial is None
        s.started(t, 1, d.bracket)
    for t in range(8):
        s.report(t, 1, (float(t), 0.0))
        assert s.next(True, 9) is None  # the round is full and its rung incomplete: wait (a barrier)
    s.report(8, 1, (8.0, 0.0))
    promoted = []
    while (d := s.next(True, 9)) is not None and d.trial is not None:
        promoted.append(d.trial)
        s.started(d.trial, d.fidelity, d.bracket)
    assert promoted == [8, 7, 6]


def test_hyperband_brackets_are_deterministic_and_mostly_start_low():
    s = Hyperband(27, min_epochs=1, eta=3, seed=0)
    b = [s.bracket_of(n) for n in range(400)]
    assert b == [Hyperband(27, min_epochs=1, eta=3, seed=0).bracket_of(n) for n in range(400)]
    assert set(b) == {0, 1, 2, 3} and b.count(0) > b.count(3)
    d = s.next(True, 0)
    assert d.fidelity == s.levels[d.bracket]


def test_median_stopping_stops_below_the_median():
    s = MedianStopping(5, min_epochs=1)
    for t, v in enumerate([50.0, 60.0, 70.0]):
        s.started(t, 1)
        s.report(t, 1, (v, 0.0))
    # the first three go on (fewer than min_samples earlier results each)
    assert {t for t, _ in s.go_on} == {0, 1, 2}
    s.started(3, 1)
    s.report(3, 1, (40.0, 0.0))  # below the median of 50, 60, 70
    assert 3 not in {t for t, _ in s.go_on}
    assert make_scheduler("median", 5).levels == [1, 2, 3, 4, 5]


def _asha_study(tmp_path, name="run", trials=9, strategy="random", **kw):
    return Study.create(space="macro", strategy=strategy, evaluator="train", budget=Budget(trials=trials), seed=1,
                        space_config=SPACE, evaluator_options={"epochs": 9, "data": "digits"}, run_dir=tmp_path / name,
                        scheduler=kw.pop("scheduler", "asha"), min_epochs=kw.pop("min_epochs", 1), eta=3,
                        reference=False, **kw)


def test_a_promoted_trial_continues_from_its_checkpoint_exactly(tmp_path):
    study = _asha_study(tmp_path)
    s = study.run()
    top = [r for r in s.trials if r.fidelity == 9]
    assert top, "nobody reached the top rung"
    assert len(study.strategy.history) == 9  # the searcher is told each trial once
    ev = EvaluatorSpec("macro", SPACE, "train", {"epochs": 9, "data": "digits"}).build()
    for r in top[:1]:
        fresh = ev.evaluate(r.arch, r.seed, 9)  # trained in one go
        assert fresh.metrics["val_accuracy"] == r.metrics["val_accuracy"]
        assert fresh.metrics["val_loss"] == pytest.approx(r.metrics["val_loss"], abs=1e-12)
        assert [c["epoch"] for c in s.curves[r.number]] == list(range(1, 10))  # one row per epoch
        assert s.rungs[r.number] == [1.0, 3.0, 9.0]
    assert s.best.fidelity == 9 and s.best in top
    assert all(len(s.curves[r.number]) == r.fidelity for r in s.trials)
    # test accuracy is measured at the top rung only (reporting; a first rung's test number says nothing)
    assert all(("test_accuracy" in r.metrics) == (r.fidelity == 9) for r in s.trials if r.status == "ok")


def test_asha_resumes_after_sigkill_mid_rung_as_if_uninterrupted(tmp_path):
    ref = _asha_study(tmp_path, "ref", trials=8).run()
    run_dir = tmp_path / "killed"
    code = ("import sys; from archsearch.study import Study, Budget; "
            f"Study.create(space='macro', strategy='random', evaluator='train', budget=Budget(trials=8), seed=1, "
            f"space_config={SPACE!r}, evaluator_options={{'epochs': 9, 'data': 'digits'}}, "
            f"run_dir={str(run_dir)!r}, scheduler='asha', min_epochs=1, eta=3, reference=False).run()")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        try:
            if len(RunStore(run_dir).rungs()) >= 5:
                break
        except Exception:  # noqa: BLE001 - not created yet
            pass
        time.sleep(0.05)
    assert proc.poll() is None, "the search ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {(t, f): v for t, f, v, *_ in RunStore(run_dir).rungs()}
    Study.resume(run_dir).run()
    after = summarize(run_dir)
    got = {(t, f): v for t, f, v, *_ in RunStore(run_dir).rungs()}
    assert all(got[k] == v for k, v in before.items())  # nothing finished is lost or changed
    assert got == {(t, f): v for t, f, v, *_ in RunStore(tmp_path / "ref").rungs()}
    assert [(r.arch, r.fidelity, r.value) for r in after.trials] == [(r.arch, r.fidelity, r.value) for r in ref.trials]


def test_constraints_on_static_costs_reject_candidates_before_training(tmp_path):
    from archsearch.objective import parse_objective
    obj = parse_objective(None, ["params<=600"])
    s = Study.create(space="macro", strategy="random", evaluator="train", budget=Budget(trials=4), seed=0,
                     space_config=SPACE, evaluator_options={"epochs": 1, "data": "digits"},
                     objective=obj, run_dir=tmp_path / "c", reference=False).run()
    trained = [r for r in s.trials if "train_seconds" in r.metrics]
    assert len(trained) == 4 and all(r.metrics["params"] <= 600 for r in trained)
    rejected = [r for r in s.trials if r.metrics.get("rejected")]
    assert rejected and all(r.status == "infeasible" and r.metrics["params"] > 600 for r in rejected)
    with pytest.raises(UserError, match="no architecture among"):
        Study.create(space="macro", strategy="random", evaluator="train", budget=Budget(trials=4), seed=0,
                     space_config=SPACE, evaluator_options={"epochs": 1, "data": "digits"},
                     objective=parse_objective(None, ["params<=10"]), run_dir=tmp_path / "none")


def test_the_time_budget_stops_training_inside_an_epoch(tmp_path):
    from archsearch.datasets import load_data
    from archsearch.spaces import get_space
    from archsearch.training.loop import BudgetExhausted, TrainConfig, Trainer

    sp = get_space("macro", **SPACE)
    model = sp.build(sp.sample(__import__("numpy").random.default_rng(0)), load_data("digits").shape)
    trainer = Trainer(model, load_data("digits"), TrainConfig(epochs=1000, batch_size=16))
    t0 = time.time()
    with pytest.raises(BudgetExhausted) as e:
        trainer.train_until(1000, deadline=t0 + 0.5)
    assert time.time() - t0 < 0.8 and e.value.epochs_done < 1000
    s = Study.create(space="macro", strategy="random", evaluator="train", budget=Budget(seconds=2.0), seed=0,
                     space_config=SPACE, evaluator_options={"epochs": 500, "data": "digits"},
                     run_dir=tmp_path / "t", reference=False)
    t0 = time.perf_counter()
    out = s.run()
    assert time.perf_counter() - t0 < 2.0 * 1.05 + 0.5
    assert out.trials[-1].status == "stopped" and out.curves.get(out.trials[-1].number)  # kept, partial curve


def test_bad_scheduler_settings_are_one_line(tmp_path):
    from archsearch.registry import UnknownNameError
    with pytest.raises(UnknownNameError, match="unknown scheduler"):
        _asha_study(tmp_path, "a", scheduler="nope")
    with pytest.raises(UserError, match="bohb"):
        _asha_study(tmp_path, "b", scheduler="bohb", strategy="random")
    for bad in (0, -1, 10):  # a first rung of 0 epochs is out of range, not the default
        with pytest.raises(UserError, match="--min-epochs must be above 0"):
            _asha_study(tmp_path, f"m{bad}", min_epochs=bad)


def test_a_first_rung_of_zero_epochs_is_one_line_exit_2(tmp_path, capsys):
    from conftest import run_cli
    code, _, err = run_cli(capsys, "search", "--scheduler", "asha", "--min-epochs", "0", "--out", str(tmp_path / "r"))
    assert code == 2 and "--min-epochs must be above 0" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_the_reference_is_the_searchers_first_rung_observation(tmp_path):
    """Warm start in a multi-fidelity search: the reference trains to the top rung, and the strategy is told
    its result at the first rung (read off its learning curve), as it is told every trial's; never a trial."""
    study = Study.create(space="macro", strategy="evolution", evaluator="train", budget=Budget(trials=3), seed=1,
                         space_config=SPACE, evaluator_options={"epochs": 9, "data": "digits"},
                         run_dir=tmp_path / "warm", scheduler="asha", min_epochs=1, eta=3,
                         strategy_options={"population": 2, "sample_size": 2}, executor="inline")
    s = study.run()
    ref = s.reference
    assert ref["status"] == "ok" and ref["fidelity"] == 9 and len(ref["curve"]) == 9
    told = [o for o in study.strategy.history if o.trial is None]
    assert [o.arch for o in told] == [study.space.reference()]
    assert told[0].value == ref["curve"][0]["val_accuracy"] != ref["metrics"]["val_accuracy"]
    assert ref["start_event"] is not None and len(s.trials) == 3  # an event, not a trial
    cold = Study.create(space="macro", strategy="evolution", evaluator="train", budget=Budget(trials=3), seed=1,
                        space_config=SPACE, evaluator_options={"epochs": 9, "data": "digits"},
                        run_dir=tmp_path / "cold", scheduler="asha", min_epochs=1, eta=3,
                        strategy_options={"population": 2, "sample_size": 2}, executor="inline",
                        warm_start=False)
    cold.run()
    assert all(o.trial is not None for o in cold.strategy.history)
    assert "start_event" not in cold.summary().reference


@pytest.mark.parametrize("crash_after", [1, 4])
def test_a_killed_warm_started_asha_search_resumes_to_the_same_search(tmp_path, crash_after):
    """The reference's tell (at whatever point it arrived) is replayed in place on resume."""
    from test_ask_order import Shuffled

    def study(name, **kw):
        return Study.create(space="macro", strategy="evolution", evaluator="train", budget=Budget(trials=5), seed=1,
                            space_config=SPACE, evaluator_options={"epochs": 9, "data": "digits"},
                            run_dir=tmp_path / name, scheduler="asha", min_epochs=1, eta=3,
                            strategy_options={"population": 2, "sample_size": 2}, executor="shuffled-test",
                            workers=1, **kw)
    Shuffled.order_seed, Shuffled.crash_after = 0, None
    whole = study("whole").run()
    Shuffled.crash_after = crash_after
    s = study("cut")
    with pytest.raises(KeyboardInterrupt):
        s.run()
    s.release()
    Shuffled.crash_after = None
    r = Study.resume(tmp_path / "cut").run()
    assert [(t.arch, t.fidelity, t.value) for t in r.trials] == [(t.arch, t.fidelity, t.value) for t in whole.trials]
    assert r.reference["start_event"] == whole.reference["start_event"] is not None


def test_rungs_below_one_epoch():
    assert rung_levels(1 / 3, 9, 3) == [1 / 3, 1, 3, 9]
    assert rung_levels(0.33, 9, 3) == [1 / 3, 1, 3, 9]  # 1/eta**k down to the given minimum
    assert rung_levels(0.1, 9, 3) == [1 / 9, 1 / 3, 1, 3, 9]
    assert rung_levels(0.5, 6, 3) == [0.5, 1, 3, 6]  # above 1/eta: the minimum itself
    with pytest.raises(UserError, match="above 0"):
        rung_levels(0, 9, 3)
    with pytest.raises(UserError, match="whole number"):
        make_scheduler("median", 5, min_epochs=0.5)
    s = make_scheduler("asha", 9, min_epochs=1 / 3)
    s.started(0, 1 / 3)
    s.report(0, 0.3333333333333333, (50.0, 0.0))
    assert s.where[0] == (0, 0)


def test_a_fraction_of_an_epoch_continues_mid_epoch_exactly():
    """Trained to 1/3 of an epoch, saved, loaded into a fresh trainer and trained on to 2 epochs: the same model
    as one call to 2 epochs (the epoch's batch order and the loss so far are in the checkpoint)."""
    import torch

    from archsearch.datasets import load_data
    from archsearch.spaces import get_space
    from archsearch.training.loop import TrainConfig, Trainer
    data = load_data("digits")
    sp = get_space("macro", **SPACE)
    arch = sp.reference()

    def trainer():
        torch.manual_seed(0)
        return Trainer(sp.build(arch, data.shape), data, TrainConfig(epochs=2), seed=0, horizon=2)
    whole = trainer()
    whole.train_until(2, validate=True)
    part = trainer()
    part.train_until(1 / 3, validate=True)
    assert part.epoch == 0 and 0 < part.batch < -(-len(data.y_train) // 64)
    assert part.history[-1]["epoch"] == pytest.approx(1 / 3)
    import io
    buf = io.BytesIO()
    torch.save(part.state_dict(), buf)
    buf.seek(0)
    on = trainer()
    on.load_state_dict(torch.load(buf, weights_only=True))
    on.train_until(2, validate=True)
    assert [h["epoch"] for h in on.history] == pytest.approx([1 / 3, 1, 2])
    for a, b in zip(whole.model.state_dict().values(), on.model.state_dict().values()):
        assert torch.equal(a, b)
    assert on.train_loss == whole.train_loss
    assert on.result().val_accuracy == whole.result().val_accuracy


def test_asha_with_a_first_rung_of_a_third_of_an_epoch(tmp_path):
    study = _asha_study(tmp_path, trials=9, min_epochs=0.33)
    s = study.run()
    assert {r.fidelity for r in s.trials} <= {1 / 3, 1, 3, 9}
    assert sum(1 for r in s.trials if r.fidelity == 1 / 3) >= 5
    top = max(s.trials, key=lambda r: r.fidelity)
    assert s.rungs[top.number][0] == pytest.approx(1 / 3) and len(s.rungs[top.number]) >= 2
    ev = EvaluatorSpec("macro", SPACE, "train", {"epochs": 9, "data": "digits"}).build()
    fresh = ev.evaluate(top.arch, top.seed, top.fidelity, horizon=9)  # trained in one go
    assert fresh.metrics["val_accuracy"] == top.metrics["val_accuracy"]
    assert fresh.metrics["val_loss"] == pytest.approx(top.metrics["val_loss"], abs=1e-12)


def test_a_promotion_the_seconds_budget_cannot_finish_is_not_started():
    """At 4 s an epoch so far, 90 s into a 100 s budget: on to 3 epochs fits (8 s more), on to 9 does not."""
    from types import SimpleNamespace

    from archsearch.space import Architecture
    from archsearch.storage import TrialRecord
    from archsearch.study import _Loop

    rec = TrialRecord(0, Architecture({"a": 1}), "ok", 0, metrics={"epochs": 1.0, "train_seconds": 4.0})
    loop = SimpleNamespace(study=SimpleNamespace(budget=Budget(seconds=100)), elapsed=lambda: 90.0)
    assert _Loop.fits(loop, rec, 3) and not _Loop.fits(loop, rec, 9)
    loop.study.budget = Budget(trials=5)  # no seconds budget: every promotion fits
    assert _Loop.fits(loop, rec, 9)
    s = ASHA(9, min_epochs=1, eta=3)
    _feed(s, [10.0, 30.0, 20.0])
    s.fail(1)  # what the study does with a promotion that does not fit: the next worker starts a new trial
    assert s.next(True, 3).trial is None


def test_a_promotion_reads_the_trials_flops_from_its_checkpoint(tmp_path, monkeypatch):
    """FLOPs are counted once a trial: continued from its checkpoint it does not count them again."""
    ev = EvaluatorSpec("macro", SPACE, "train", {"epochs": 3, "data": "digits"}).build()
    arch = ev.space.sample(__import__("numpy").random.default_rng(0))
    ck = str(tmp_path / "trial-0.pt")
    first = ev.evaluate(arch, 0, 1, checkpoint=ck, horizon=3)

    def no_count(*a, **k):
        raise AssertionError("FLOPs counted again")
    monkeypatch.setattr(ev.hardware, "static", no_count)
    later = ev.evaluate(arch, 0, 3, checkpoint=ck, horizon=3)
    assert later.ok and later.metrics["flops"] == first.metrics["flops"] > 0
    assert later.metrics["epochs"] == 3


def test_best_vs_reference_says_when_the_best_never_reached_the_top_rung():
    from types import SimpleNamespace

    from archsearch.cli._common import reference_line
    from archsearch.summary import StudySummary

    def summary(best_fidelity):
        best = SimpleNamespace(fidelity=best_fidelity, metrics={"val_accuracy": 60.0})
        ref = {"status": "ok", "text": "ref", "fidelity": 3, "metrics": {"val_accuracy": 90.0}}
        s = SimpleNamespace(reference=ref, best=best)
        s.versus_reference = lambda metric="val_accuracy": StudySummary.versus_reference(s, metric)
        return s
    line = reference_line(summary(1))
    assert "-30.00 points val" in line and "did not beat" in line
    assert "trained 1 epochs, the reference 3: not a like-for-like comparison" in line
    assert "like-for-like" not in reference_line(summary(3))
