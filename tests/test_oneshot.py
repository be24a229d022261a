"""One-shot strategies: each runs an epoch and derives a valid architecture; the algorithms' defining properties;
checkpoint/resume; the command line."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from archsearch.datasets import make_dataset
from archsearch.errors import UserError
from archsearch.spaces import get_space
from archsearch.strategies.oneshot import ONESHOT, make_oneshot
from archsearch.strategies.oneshot.nasib import epochs_for_budget
from archsearch.oneshot_study import OneShotStudy
from archsearch.strategies.oneshot.supernet import MixedOp
from archsearch.storage import RunStore

SPACES = {"cell": {"channels": 4, "layers": 3, "nodes": 2}, "nb201": {"channels": 4, "cells_per_stage": 1}}
FAST = {"batch_size": 32, "bn_batches": 1}
PER_STRATEGY = {"spos": {"derive_trials": 4, "population": 2, "sample_size": 2},
                "enas": {"controller_steps": 3, "derive_samples": 2}}


def digits(n: int = 200):
    from sklearn.datasets import load_digits
    d = load_digits()
    return (d.images[:n] / 16.0).astype(np.float32)[:, None], d.target[:n].astype(np.int64)


@pytest.fixture(scope="module")
def data():
    x, y = digits()
    return make_dataset("tiny", x[:120], y[:120], x[120:160], y[120:160], x[160:], y[160:])


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    x, y = digits()
    np.savez(path, x=x, y=y)
    return str(path)


def strategy(name, data, space="nb201", epochs=1, **options):
    return make_oneshot(name, get_space(space, **SPACES[space]), data, epochs, seed=0,
                        **{**FAST, **PER_STRATEGY.get(name, {}), **options})


@pytest.mark.parametrize("space, name", [(sp, n) for n in ONESHOT.names() for sp in sorted(SPACES)
                                         if (sp, n) != ("cell", "darts2")])  # the slowest pair: nb201 covers it
def test_every_strategy_runs_an_epoch_and_derives_an_architecture_of_the_space(name, space, data):
    s = strategy(name, data, space)
    metrics = s.run_epoch()
    assert s.epoch == 1 and np.isfinite(metrics["train_loss"]) and 0 <= metrics["val_accuracy"] <= 100
    assert s.space.contains(s.derive())


def count_candidate_calls(s):
    """Per mixed op (module), the candidates run since the last reset."""
    calls: dict[int, list[int]] = {}
    for op in (m for m in s.model.modules() if isinstance(m, MixedOp)):
        for k, cand in enumerate(op.candidates):
            cand.register_forward_hook(lambda m, i, o, op=op, k=k: calls.setdefault(id(op), []).append(k))
    return calls


def batch(data, split="train", n=32):
    return getattr(data, f"x_{split}")[:n], getattr(data, f"y_{split}")[:n]


def test_proxylessnas_runs_one_path_for_weights_and_two_for_alpha(data):
    s = strategy("proxyless", data)
    calls = count_candidate_calls(s)
    n_ops = sum(isinstance(m, MixedOp) for m in s.model.modules())
    s.state.set("path", s.sample_path())
    s.w_step(*batch(data))
    assert len(calls) == n_ops and all(len(v) == 1 for v in calls.values())
    calls.clear()
    s.binary_alpha_step(*batch(data, "val"))
    assert len(calls) == n_ops and all(len(v) == 2 and v[0] != v[1] for v in calls.values())


def test_proxylessnas_keeps_the_unsampled_probabilities(data):
    s = strategy("proxyless", data)
    before = {k: torch.softmax(a.detach(), 0).clone() for k, a in s.supernet.alphas.tensors.items()}
    s.binary_alpha_step(*batch(data, "val"))
    for label, (active, other) in s.state.path.items():
        after = torch.softmax(s.supernet.alphas[label].detach(), 0)
        rest = [k for k in range(len(after)) if k not in (active, other)]
        assert torch.allclose(after[rest], before[label][rest], atol=1e-6)


def test_gdas_forward_is_one_hot_one_candidate_per_op(data):
    s = strategy("gdas", data)
    calls = count_candidate_calls(s)
    s.sample_gates()
    for label, g in s.state.gates.items():
        assert torch.equal(g.detach(), torch.nn.functional.one_hot(g.argmax(), len(g)).float())
    s.w_step(*batch(data))
    assert all(len(v) == 1 for v in calls.values())


def test_darts_second_order_runs_and_differs_from_first_order(data):
    alphas = []
    for order in (1, 2):
        s = strategy("darts", data, order=order)
        s.state.set("softmax")
        xt, yt = batch(data)
        s.w_step(xt, yt)  # momentum buffers exist: the unrolled step uses them
        s.unrolled_alpha_step(xt, yt, *batch(data, "val")) if order == 2 else s.alpha_step(*batch(data, "val"))
        alphas.append(torch.cat([a.detach().flatten() for a in s.supernet.alphas.parameters()]))
    assert torch.isfinite(alphas[1]).all() and not torch.allclose(alphas[0], alphas[1])
    assert ONESHOT.get("darts2")(get_space("nb201", **SPACES["nb201"]), data, 1, **FAST).opts.order == 2


def test_nasib_exploration_decays_and_stretches_over_the_budget(data):
    assert epochs_for_budget(100, 30) == 3 and epochs_for_budget(1, 30) == 1
    short = strategy("nasib", data, budget_seconds=10, epoch_seconds=2.5)
    long = strategy("nasib", data, budget_seconds=20, epoch_seconds=2.5)
    assert (short.total_epochs, long.total_epochs) == (4, 8)
    total = short.total_epochs * short.steps_per_epoch
    trace = []
    for step in range(total):
        short.steps = long.steps = step
        trace.append((short.p1, long.p1))
    p_short = [a for a, _ in trace]
    assert p_short[0] == 1.0 and abs(p_short[-1] - 0.01) < 1e-9
    assert all(a > b for a, b in zip(p_short, p_short[1:]))
    assert all(b > a for a, b in trace[1:])  # a larger budget explores longer


def test_nasib_times_its_first_epoch_to_size_the_run(data):
    s = strategy("nasib", data, epochs=50, budget_seconds=1e-6)
    assert s.p1 == 1.0  # exploring while the first epoch is timed
    s.run_epoch()
    assert s.epoch_seconds > 0 and s.total_epochs == 1


def test_unknown_option_is_one_clear_error(data):
    with pytest.raises(UserError, match="no option 'nope'"):
        strategy("darts", data, nope=1)


def run_study(tmp_path, npz, name, strategy_name, stop_after=None, epochs=2):
    study = OneShotStudy.create(space="cell", strategy=strategy_name, epochs=epochs, seed=3,
                                space_config=SPACES["cell"],
                                strategy_options={**FAST, **PER_STRATEGY.get(strategy_name, {})},
                                evaluator_options={"data": npz, "epochs": 1, "batch_size": 32}, data=npz,
                                run_dir=tmp_path / name)

    class Stop(Exception):
        pass

    def on_epoch(p):
        if stop_after is not None and p.epoch >= stop_after:
            raise Stop

    try:
        return study.run(on_epoch=on_epoch)
    except Stop:
        return None


@pytest.mark.parametrize("name", ["darts", "enas"])
def test_resume_continues_from_the_last_epoch_and_ends_as_an_uninterrupted_run(tmp_path, npz, name):
    full = run_study(tmp_path, npz, "full", name)
    assert run_study(tmp_path, npz, "part", name, stop_after=1) is None
    store = RunStore(tmp_path / "part")
    assert [e.epoch for e in store.epochs()] == [1] and store.trials() == []
    first = store.epochs()[0]
    resumed = OneShotStudy.resume(tmp_path / "part")
    seen = []
    summary = resumed.run(on_epoch=lambda p: seen.append(p.epoch))
    assert seen == [2]  # only the missing epoch ran
    assert RunStore(tmp_path / "part").epochs()[0] == first  # the finished epoch kept as it was (its time too)
    assert summary.best.arch == full.best.arch
    assert summary.best.metrics["val_accuracy"] == full.best.metrics["val_accuracy"]
    a, b = RunStore(tmp_path / "full").epochs(), RunStore(tmp_path / "part").epochs()
    assert [e.alphas for e in a] == [e.alphas for e in b] and [e.arch for e in a] == [e.arch for e in b]
    best = json.loads((tmp_path / "part" / "best.json").read_text())
    assert best["architecture"] == full.best.arch.to_dict() and best["weights"] == "best.pt"


def test_time_cap_stops_after_an_epoch_and_epochs_record_the_architecture_weights(tmp_path, npz):
    study = OneShotStudy.create(space="nb201", strategy="gdas", epochs=5, seconds=1e-3, space_config=SPACES["nb201"],
                                strategy_options=FAST, evaluator_options={"data": npz, "epochs": 1}, data=npz,
                                run_dir=tmp_path / "run")
    summary = study.run()
    epochs = RunStore(tmp_path / "run").epochs()
    assert len(epochs) == 1 and summary.best.metrics["search_epochs"] == 1
    alphas = epochs[0].alphas
    assert set(alphas) == set(get_space("nb201").labels)
    assert all(abs(sum(p) - 1) < 1e-4 and len(p) == 5 for p in alphas.values())
    assert get_space("nb201").contains(epochs[0].arch)


def cli(capsys, *args):
    """Run the command line in this process (its imports are paid once): (exit code, stdout, stderr)."""
    from archsearch.cli import main
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_darts_on_the_cell_space_end_to_end(tmp_path, npz, capsys):
    run = tmp_path / "run"
    code, out, err = cli(capsys, "search", "--strategy", "darts", "--space", "cell", "--space-opt", "channels=4",
                         "--space-opt", "layers=3", "--space-opt", "nodes=2", "--data", npz, "--epochs", "1",
                         "--train-epochs", "1", "--strategy-opt", "batch_size=32", "--out", run, "--quiet")
    assert code == 0, err
    assert "best architecture" in out and "Genotype(" in out
    code, out, err = cli(capsys, "show", run, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["trials"] == {"ok": 1} and doc["config"]["strategy"]["name"] == "darts"
    assert set(doc["best"]["architecture"]) == set(get_space("cell", **SPACES["cell"]).labels)
    assert doc["best"]["metrics"]["search_epochs"] == 1
    code, out, err = cli(capsys, "search", "--resume", run, "--quiet")  # finished: nothing left to do
    assert code == 0 and "best architecture" in out


def test_cli_unknown_one_shot_option_is_one_line_and_exit_code_2(tmp_path, capsys):
    code, out, err = cli(capsys, "search", "--space", "nb201", "--strategy", "darts", "--strategy-opt", "nope=1",
                         "--out", tmp_path / "x")
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "no option 'nope'" in lines[0], err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("kwargs, message", [
    ({"strategy": "nasib", "strategy_options": {"lam": 0}}, "lam > 0"),
    ({"strategy": "darts", "strategy_options": {"order": 3}}, "order must be 1 or 2"),
    ({"strategy": "darts", "epochs": 0}, "at least one epoch"),
    ({"strategy": "nope"}, "unknown one-shot strategy 'nope'"),
])
def test_bad_one_shot_settings_fail_before_the_run_directory_exists(tmp_path, kwargs, message):
    from archsearch.registry import UnknownNameError
    with pytest.raises((UserError, UnknownNameError), match=message):
        OneShotStudy.create(**{"space": "nb201", "epochs": 1, "run_dir": tmp_path / "x", **kwargs})
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("name", ["darts", "gdas", "nasib"])
def test_the_deadline_stops_an_epoch_between_batches(data, name):
    import time
    s = strategy(name, data, batch_size=8)
    s.deadline = time.time() - 1  # already past: no batch runs
    s.run_epoch()
    assert s.partial and s.epoch == 1
    s2 = strategy(name, data, batch_size=8)
    t0 = time.time()
    s2.deadline = t0 + 0.05
    s2.train_epoch()
    full = strategy(name, data, batch_size=8)
    t1 = time.time()
    full.train_epoch()
    assert not full.partial and (s2.partial or time.time() - t1 < 0.05)


def test_a_step_that_would_end_past_the_deadline_is_not_begun(data):
    import time
    s = strategy("darts", data, batch_size=8)
    s.step = lambda *batch: (time.sleep(0.3), 1.0)[1]  # a step of 0.3 s: steps begin at 0, 0.3, 0.6, not at 0.9
    t0 = time.time()
    s.deadline = t0 + 1.0
    metrics = s.run_epoch()
    assert s.partial and 2 <= s.epoch_steps <= 3 and time.time() <= s.deadline + 0.05
    assert "val_accuracy" not in metrics and metrics["train_loss"] == 1.0
    s.deadline, s._step_s = time.time() + 0.2, 0.3  # no step fits: the epoch records no training loss
    metrics = s.run_epoch()
    assert s.partial and s.epoch_steps == 0 and "train_loss" not in metrics


def test_the_validation_pass_is_skipped_when_it_would_end_past_the_deadline(data):
    import time
    s = strategy("darts", data, batch_size=8)
    s.run_epoch()
    assert s._eval_s is not None and s._eval_s > 0
    s.deadline = time.time() + 1000  # an epoch that ends in time, and its validation pass would too
    assert "val_accuracy" in s.run_epoch()
    s._eval_s = 1e6  # a validation pass longer than what is left: the epoch is whole, its accuracy not measured
    metrics = s.run_epoch()
    assert not s.partial and "val_accuracy" not in metrics


def test_a_search_budget_in_seconds_is_kept_inside_epochs(tmp_path, npz):
    import time
    study = OneShotStudy.create(space="cell", strategy="darts", epochs=50, seconds=1.5, space_config=SPACES["cell"],
                                strategy_options={**FAST, "batch_size": 8}, evaluator_options={"data": npz, "epochs": 1},
                                data=npz, run_dir=tmp_path / "run")
    strategy_ = study.make_strategy()  # building the supernet is before the budget's clock starts
    t0 = time.perf_counter()
    study._load_checkpoint(strategy_)
    study._search(strategy_, None)
    wall = time.perf_counter() - t0
    assert wall < 1.5 * 1.05 + 0.5  # the search phase, within S (+ the last batch)
    epochs = RunStore(tmp_path / "run").epochs()
    # the schedule was fitted to what the budget holds, or the first epoch already was cut short
    assert epochs and (strategy_.total_epochs < 50 or epochs[0].metrics.get("partial") == 1.0)
    # it stopped because the time ran out: inside an epoch (partial), or after a whole epoch (its last batch or
    # its checkpoint write passed S), or the fitted schedule was done
    assert (epochs[-1].metrics.get("partial") == 1.0 or len(epochs) == strategy_.total_epochs or wall >= 1.5)
    # a cut epoch skips the pass over the validation split (it would run past the budget)
    assert all("val_accuracy" not in e.metrics for e in epochs if e.metrics.get("partial") == 1.0)
    study.run_lock.release()
