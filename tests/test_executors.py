"""Executors: process pool and Ray run trials in parallel, survive dying and hanging workers, lose nothing."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

import executor_helpers
from archsearch.evaluators import EVALUATORS, register_evaluator
from archsearch.storage import RunStore
from archsearch.study import Budget, Study

if "misbehaving" not in EVALUATORS:
    register_evaluator("misbehaving")(executor_helpers.Misbehaving)


def study(tmp_path, executor, trials=8, workers=2, **kw):
    opts = {"marker_dir": str(tmp_path), **kw.pop("evaluator_options", {})}
    return Study.create(space="nb201", strategy="evolution", evaluator="misbehaving", budget=Budget(trials=trials),
                        strategy_options={"population": 4, "sample_size": 2}, evaluator_options=opts,
                        run_dir=tmp_path / "run", executor=executor, workers=workers, **kw)


def test_process_pool_runs_trials_in_parallel(tmp_path):
    s = study(tmp_path, "process", trials=10, evaluator_options={"victim": -1, "seconds": 0.3}, threads=1)
    summary = s.run()
    assert summary.counts == {"ok": 10}
    assert len({t.metrics["pid"] for t in summary.trials}) == 2  # both workers did work
    assert {t.metrics["threads"] for t in summary.trials} == {1.0}  # --threads 1 in every worker
    spans = [(t.started, t.finished) for t in summary.trials]
    # two trials overlapped in time (any two: the workers start staggered, so the first two may just touch)
    assert any(a0 < b1 and b0 < a1 for i, (a0, a1) in enumerate(spans) for b0, b1 in spans[i + 1:])


@pytest.mark.parametrize("retries, status", [(0, "failed"), (1, "ok")])
def test_a_killed_worker_fails_or_retries_its_trial_and_the_search_goes_on(tmp_path, retries, status):
    summary = study(tmp_path, "process", trials=6, retries=retries).run()
    assert len(summary.trials) == 6 and all(t.done for t in summary.trials)
    victim = summary.trials[2]
    assert victim.status == status
    if status == "failed":
        assert "killed (SIGKILL" in victim.error
    else:
        assert victim.attempts == 2
    assert sum(t.status == "ok" for t in summary.trials) >= 5


@pytest.mark.parametrize("deaths, ok", [(2, True), (6, False)])
def test_a_worker_killed_while_starting_is_started_again(tmp_path, deaths, ok):
    """Two starts killed (by an OOM killer, say) are replaced; a slot whose every start dies stops with a line."""
    kw = {"evaluator_options": {"victim": -1, "start_deaths": deaths}, "threads": 1}
    if ok:
        assert study(tmp_path, "process", trials=4, **kw).run().counts == {"ok": 4}
    else:
        with pytest.raises(RuntimeError, match="failed to start: worker process was killed"):
            study(tmp_path, "process", trials=4, **kw).run()


def test_a_hung_trial_is_stopped_by_the_timeout(tmp_path):
    t0 = time.monotonic()
    summary = study(tmp_path, "process", trials=5, trial_timeout=4.0, evaluator_options={"mode": "hang"}).run()
    assert time.monotonic() - t0 < 60
    assert summary.trials[2].status == "failed" and "timed out" in summary.trials[2].error
    assert sum(t.status == "ok" for t in summary.trials) == 4


def test_inline_executor_refuses_parallel_settings(tmp_path):
    from archsearch.errors import UserError
    with pytest.raises(UserError, match="need --executor"):
        study(tmp_path, "inline", workers=2)
    with pytest.raises(UserError, match="--threads must be at least 1"):
        study(tmp_path, "process", threads=0)


def test_inline_executor_runs_trials_with_the_threads_asked_for(tmp_path):
    import torch
    before = torch.get_num_threads()
    summary = study(tmp_path, "inline", workers=None, trials=2, threads=1,
                    evaluator_options={"victim": -1, "seconds": 0.0}).run()
    assert {t.metrics["threads"] for t in summary.trials} == {1.0}
    assert torch.get_num_threads() == before


def test_killed_driver_with_worker_pool_resumes_without_losing_trials(tmp_path):
    run_dir = tmp_path / "killed"
    cmd = [sys.executable, "-m", "archsearch.cli", "search", "--space", "macro", "--space-opt", "layers=2",
           "--strategy", "random", "--trials", "10", "--epochs", "1", "--out", str(run_dir), "--quiet",
           "--executor", "process", "--workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, done = time.time() + 300, 0
    while time.time() < deadline and proc.poll() is None and done < 3:
        time.sleep(0.3)
        if (run_dir / "study.db").exists():
            try:
                done = sum(t.done for t in RunStore(run_dir).trials())
            except Exception:
                pass
    assert proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {t.number: t for t in RunStore(run_dir).trials() if t.done}
    out = subprocess.run(cmd[:4] + ["--resume", str(run_dir), "--quiet"], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    after = {t.number: t for t in RunStore(run_dir).trials()}
    assert len(after) == 10 and all(t.done for t in after.values())
    assert all(after[n].metrics == t.metrics for n, t in before.items())


ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def two_node_cluster():
    """A two-node Ray cluster on this machine (head + one worker node, one CPU each)."""
    from ray import cloudpickle
    from ray.cluster_utils import Cluster

    cloudpickle.register_pickle_by_value(executor_helpers)  # Ray workers do not see the tests directory
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    yield cluster
    ray.shutdown()
    cluster.shutdown()


def test_ray_on_a_two_node_cluster_survives_a_killed_worker(tmp_path, two_node_cluster):
    s = study(tmp_path, "ray", trials=8, retries=1, address=two_node_cluster.address)
    summary = s.run()
    assert summary.counts == {"ok": 8}
    assert summary.trials[2].attempts == 2  # its actor was killed once, the retry succeeded
    assert len({t.metrics["pid"] for t in summary.trials}) >= 2
