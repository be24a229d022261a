"""The study loop: storage, budget, failures, best outputs, resume (including after SIGKILL)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from torch import nn

from archsearch.errors import UserError
from archsearch.spaces import register_space, SPACES
from archsearch.storage import RunStore
from archsearch.study import Budget, Study, summarize


def make(tmp_path, trials=30, strategy="evolution", space="macro", evaluator="synthetic", name="run", **kw):
    return Study.create(space=space, strategy=strategy, evaluator=evaluator, budget=Budget(trials=trials),
                        seed=kw.pop("seed", 0), space_config=kw.pop("space_config", {"layers": 4}),
                        strategy_options=kw.pop("strategy_options", {"population": 5, "sample_size": 2}),
                        run_dir=tmp_path / name, **kw)


def test_every_trial_is_stored_and_best_written(tmp_path):
    study = make(tmp_path, trials=30)
    seen = []
    summary = study.run(on_trial=lambda p: seen.append(p.finished))
    assert seen == list(range(1, 31))
    assert summary.counts == {"ok": 30}
    best = json.loads((tmp_path / "run" / "best.json").read_text())
    assert best["value"] == max(t.value for t in summary.trials)
    assert best["architecture"] == summary.best.arch.to_dict()


def test_resume_continues_to_the_budget_and_replays_exactly(tmp_path):
    full = make(tmp_path, trials=30, name="full").run()
    part = make(tmp_path, trials=30, name="part")
    part.budget = Budget(trials=12)  # as if killed after 12 trials
    part.run()
    assert len(RunStore(tmp_path / "part").trials()) == 12
    resumed = Study.resume(tmp_path / "part").run()
    assert len(resumed.trials) == 30
    assert [t.arch for t in resumed.trials] == [t.arch for t in full.trials]


def test_time_budget_stops_the_search(tmp_path):
    study = Study.create(space="nb201", strategy="random", evaluator="synthetic", budget=Budget(seconds=0.5),
                         run_dir=tmp_path / "t")
    t = time.perf_counter()
    summary = study.run()
    assert time.perf_counter() - t < 5 and len(summary.trials) > 0


def test_budget_must_be_positive():
    with pytest.raises(UserError):
        Budget(trials=0)
    with pytest.raises(UserError):
        Budget(seconds=-1)


def nan_space(c, shape):
    """A space in which one choice makes the loss NaN and another crashes at build time."""
    kind = c.value("kind", ["fine", "nan", "crash"])
    if kind == "crash":
        raise RuntimeError("cannot build this one")

    class Poison(nn.Module):
        def forward(self, x):
            return x * float("nan")

    body = [nn.Flatten(), nn.Linear(shape.channels * shape.height * shape.width, shape.num_classes)]
    if kind == "nan":
        body.insert(0, Poison())
    return nn.Sequential(*body)


if "test-nan" not in SPACES:
    register_space("test-nan")(nan_space)


def test_failed_and_nan_trials_are_recorded_and_the_search_goes_on(tmp_path):
    study = Study.create(space="test-nan", strategy="random", evaluator="train", budget=Budget(trials=9),
                         evaluator_options={"epochs": 1}, run_dir=tmp_path / "nan")
    summary = study.run()
    assert len(summary.trials) == 9
    by_kind = {t.arch["kind"]: t for t in summary.trials}
    assert by_kind["fine"].status == "ok"
    assert by_kind["nan"].status == "failed" and "diverged" in by_kind["nan"].error
    assert by_kind["crash"].status == "failed" and "cannot build" in by_kind["crash"].error
    assert summary.best.arch["kind"] == "fine"


def test_crashing_evaluator_gives_failed_trials(tmp_path):
    study = make(tmp_path, trials=10, evaluator_options={"fail_every": 3})
    summary = study.run()
    assert summary.counts == {"ok": 7, "failed": 3}
    assert all("synthetic crash" in t.error for t in summary.trials if t.status == "failed")


def test_training_search_writes_loadable_best_weights(tmp_path):
    study = Study.create(space="macro", strategy="random", evaluator="train", budget=Budget(trials=2), seed=1,
                         space_config={"layers": 2}, evaluator_options={"epochs": 1}, run_dir=tmp_path / "w")
    summary = study.run()
    from archsearch.datasets import load_digits
    model = study.space.build(summary.best.arch, load_digits().shape)
    model.load_state_dict(torch.load(tmp_path / "w" / "best.pt"))
    assert summary.best.metrics["params"] == sum(p.numel() for p in model.parameters())


def test_resume_of_something_that_is_not_a_run(tmp_path):
    with pytest.raises(UserError, match="not an archsearch run"):
        Study.resume(tmp_path)


def test_sigkilled_search_resumes_without_losing_trials(tmp_path):
    run_dir = tmp_path / "killed"
    cmd = [sys.executable, "-m", "archsearch.cli", "search", "--space", "macro", "--space-opt", "layers=2",
           "--strategy", "evolution", "--trials", "10", "--epochs", "1", "--out", str(run_dir), "--quiet",
           "--executor", "inline"]  # the driver's own trials (a pool's: tests/test_executors.py)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    done = 0
    while time.time() < deadline and proc.poll() is None:
        if (run_dir / "study.db").exists():
            try:
                done = sum(1 for t in RunStore(run_dir).trials() if t.done)
            except Exception:
                done = 0
            if done >= 3:
                break
        time.sleep(0.2)
    assert proc.poll() is None, "the search ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {t.number: t for t in RunStore(run_dir).trials() if t.done}
    assert len(before) >= 3
    out = subprocess.run(cmd[:4] + ["--resume", str(run_dir), "--quiet"], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    after = {t.number: t for t in RunStore(run_dir).trials()}
    assert len(after) == 10 and all(t.done for t in after.values())
    for n, t in before.items():  # every finished trial kept as it was
        assert after[n].arch == t.arch and after[n].metrics == t.metrics
    summary = summarize(run_dir)
    assert (run_dir / "best.pt").exists() and summary.best is not None
