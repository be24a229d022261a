"""Parallel workers tell the strategy in ask order: the same seed gives the same search whatever order the
workers finish in (issue 22: the precondition for a parallel default)."""
from __future__ import annotations

import numpy as np
import pytest

from archsearch.executors import EXECUTORS, Executor
from archsearch.executors.base import safe_evaluate
from archsearch.storage import RunStore
from archsearch.study import Budget, Study


class Shuffled(Executor):
    """``workers`` slots whose jobs finish in a random order (``order_seed``): timing, without the clock."""

    order_seed = 0
    crash_after: int | None = None  # raise after this many results (a killed driver)

    def __init__(self, evaluator, workers=None, **_):
        self.evaluate = evaluator.evaluate
        self.capacity = workers or 1
        self.running: list = []
        self.rng = np.random.default_rng(Shuffled.order_seed)
        self.returned = 0

    def submit(self, job):
        self.running.append(job)

    @property
    def in_flight(self):
        return len(self.running)

    def wait(self):
        if Shuffled.crash_after is not None and self.returned >= Shuffled.crash_after:
            raise KeyboardInterrupt
        job = self.running.pop(int(self.rng.integers(len(self.running))))
        self.returned += 1
        return [(job, safe_evaluate(self.evaluate, job))]


EXECUTORS.register("shuffled-test")(Shuffled)


def run(tmp_path, name, order_seed, tell=None, strategy="evolution", trials=24, workers=3, reference=False):
    Shuffled.order_seed, Shuffled.crash_after = order_seed, None
    s = Study.create(space="nb201", strategy=strategy, evaluator="synthetic", budget=Budget(trials=trials), seed=5,
                     strategy_options={"population": 4, "sample_size": 2} if strategy == "evolution" else {},
                     run_dir=tmp_path / name, executor="shuffled-test", workers=workers, reference=reference)
    if tell is not None:
        s.execution["tell"] = tell
    summary = s.run()
    return {t.number: s.space.format(t.arch) for t in summary.trials}, summary


def events(run_dir):
    store = RunStore(run_dir, read_only=True)
    try:
        return sorted((t.ask_event, t.tell_event, t.number) for t in store.trials())
    finally:
        store.close()


def test_finishing_order_does_not_change_the_search(tmp_path):
    archs = [run(tmp_path, f"r{k}", k)[0] for k in range(3)]
    assert len(archs[0]) == 24
    assert archs[0] == archs[1] == archs[2]
    assert events(tmp_path / "r0") == events(tmp_path / "r1") == events(tmp_path / "r2")
    # each tell in ask order, at most 2 x workers asked ahead of it
    tells = sorted((tell, number) for _, tell, number in events(tmp_path / "r0"))
    assert [n for _, n in tells] == list(range(24))


def test_arrival_order_would_change_it(tmp_path):
    """The same runs telling results as they arrive (runs stored before ask order existed) differ: the test
    above can fail."""
    archs = [run(tmp_path, f"a{k}", k, tell="arrival")[0] for k in range(3)]
    assert not archs[0] == archs[1] == archs[2]


def test_a_strategy_that_reads_no_result_keeps_arrival_order(tmp_path):
    """Random search asks the same architectures in any order of results: no lag, no asking ahead."""
    a, _ = run(tmp_path, "x0", 0, strategy="random")
    b, _ = run(tmp_path, "x1", 1, strategy="random")
    assert a == b


@pytest.mark.parametrize("crash_after", [5, 11])
def test_a_killed_run_resumes_to_the_same_search(tmp_path, crash_after):
    whole, _ = run(tmp_path, "whole", 0)
    Shuffled.order_seed, Shuffled.crash_after = 1, crash_after
    s = Study.create(space="nb201", strategy="evolution", evaluator="synthetic", budget=Budget(trials=24), seed=5,
                     strategy_options={"population": 4, "sample_size": 2}, run_dir=tmp_path / "cut",
                     executor="shuffled-test", workers=3, reference=False)
    with pytest.raises(KeyboardInterrupt):
        s.run()
    s.release()
    store = RunStore(tmp_path / "cut", read_only=True)
    done_untold = [t for t in store.trials() if t.done and t.tell_event is None]
    store.close()
    Shuffled.order_seed, Shuffled.crash_after = 2, None
    r = Study.resume(tmp_path / "cut")
    summary = r.run()
    assert {t.number: r.space.format(t.arch) for t in summary.trials} == whole
    assert crash_after != 11 or done_untold  # a result stored before its tell survives the kill


def _reference_event(run_dir):
    store = RunStore(run_dir, read_only=True)
    try:
        return store.get_meta("reference")["start_event"]
    finally:
        store.close()


def test_the_reference_is_told_first_whatever_order_the_workers_finish_in(tmp_path):
    """Warm start with results told in ask order: the reference's result is the strategy's first tell, before any
    trial's, in every finishing order, so the search stays one search per seed; and it changes the search."""
    got = [run(tmp_path, f"w{k}", k, reference=True) for k in range(3)]
    assert got[0][0] == got[1][0] == got[2][0]
    assert events(tmp_path / "w0") == events(tmp_path / "w1") == events(tmp_path / "w2")
    first_tell = min(tell for _, tell, _ in events(tmp_path / "w0"))
    assert _reference_event(tmp_path / "w0") == _reference_event(tmp_path / "w1") < first_tell
    assert got[0][0] != run(tmp_path, "cold", 0)[0]  # told the reference: another search


@pytest.mark.parametrize("crash_after", [1, 6])
def test_a_killed_warm_started_run_resumes_to_the_same_search(tmp_path, crash_after):
    whole, _ = run(tmp_path, "whole", 0, reference=True)
    Shuffled.order_seed, Shuffled.crash_after = 1, crash_after
    s = Study.create(space="nb201", strategy="evolution", evaluator="synthetic", budget=Budget(trials=24), seed=5,
                     strategy_options={"population": 4, "sample_size": 2}, run_dir=tmp_path / "cut",
                     executor="shuffled-test", workers=3)
    with pytest.raises(KeyboardInterrupt):
        s.run()
    s.release()
    Shuffled.order_seed, Shuffled.crash_after = 2, None
    r = Study.resume(tmp_path / "cut")
    summary = r.run()
    assert {t.number: r.space.format(t.arch) for t in summary.trials} == whole
    assert _reference_event(tmp_path / "cut") == _reference_event(tmp_path / "whole")
