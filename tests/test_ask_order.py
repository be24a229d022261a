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


def run(tmp_path, name, order_seed, tell=None, strategy="evolution", trials=24, workers=3):
    Shuffled.order_seed, Shuffled.crash_after = order_seed, None
    s = Study.create(space="nb201", strategy=strategy, evaluator="synthetic", budget=Budget(trials=trials), seed=5,
                     strategy_options={"population": 4, "sample_size": 2} if strategy == "evolution" else {},
                     run_dir=tmp_path / name, executor="shuffled-test", workers=workers, reference=False)
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
