"""Data-parallel one-shot search (issue 8): two processes search one supernet as one process does, for the
same seed; strategies it does not apply to are refused in one line."""
from __future__ import annotations

import pytest
import torch

from archsearch.errors import UserError
from archsearch.storage import RunStore
from archsearch.strategies.oneshot.runner import OneShotStudy

SPACE = {"channels": 4, "cells_per_stage": 1}


def search(tmp_path, name, workers, executor="process", strategy="darts", epochs=2):
    study = OneShotStudy.create(space="nb201", strategy=strategy, epochs=epochs, seed=3, space_config=SPACE,
                                strategy_options={"batch_size": 64, "bn_batches": 1},
                                evaluator_options={"epochs": 1}, run_dir=tmp_path / name, workers=workers,
                                executor=executor, threads=1)
    summary = study.run()
    store = RunStore(tmp_path / name)
    try:
        epochs_ = store.epochs()
    finally:
        store.close()
    return summary, epochs_


@pytest.fixture
def shutdown_ray():
    yield
    try:
        import ray
        ray.shutdown()
    except ImportError:
        pass


@pytest.mark.parametrize("strategy, executor", [("darts", "process"), ("gdas", "process"), ("darts", "ray")])
def test_two_processes_search_as_one_process_does(tmp_path, strategy, executor, shutdown_ray):
    if executor == "ray":
        pytest.importorskip("ray")
    one, e1 = search(tmp_path, "one", 1, strategy=strategy)
    two, e2 = search(tmp_path, "two", 2, executor=executor, strategy=strategy)
    assert one.best.arch == two.best.arch
    assert [e.arch for e in e1] == [e.arch for e in e2]
    for a, b in zip(e1, e2):  # the same α after every epoch, up to float summation order
        for label in a.alphas:
            assert torch.allclose(torch.tensor(a.alphas[label]), torch.tensor(b.alphas[label]), atol=1e-4)
        assert abs(a.metrics["train_loss"] - b.metrics["train_loss"]) < 1e-3


def test_strategies_without_a_data_parallel_form_are_refused(tmp_path):
    with pytest.raises(UserError, match="data-parallel"):
        OneShotStudy.create(space="nb201", strategy="enas", epochs=1, space_config=SPACE, run_dir=tmp_path / "r",
                            workers=2)
    with pytest.raises(UserError, match="at least 1"):
        OneShotStudy.create(space="nb201", strategy="darts", epochs=1, space_config=SPACE, run_dir=tmp_path / "r",
                            workers=0)
    with pytest.raises(UserError, match="process or ray"):
        OneShotStudy.create(space="nb201", strategy="darts", epochs=1, space_config=SPACE, run_dir=tmp_path / "r",
                            workers=2, executor="inline")


def test_the_python_api_runs_and_resumes_one_shot_searches(tmp_path):
    import archsearch
    from archsearch.strategies.oneshot.runner import OneShotStudy

    with pytest.raises(UserError, match="one-shot"):
        archsearch.search("nb201", "darts", trials=3)
    run = archsearch.search("nb201", "darts", epochs=1, train_epochs=1, space_config=SPACE, seed=0,
                            strategy_options={"batch_size": 64, "bn_batches": 1}, out=tmp_path / "api")
    assert run.best is not None and run.best.status == "ok" and run.model() is not None
    again = archsearch.resume(tmp_path / "api")  # already finished: resuming changes nothing
    assert again.best.arch == run.best.arch and len(again.trials) == 1
    assert OneShotStudy.resume(tmp_path / "api").epochs_done == 1
