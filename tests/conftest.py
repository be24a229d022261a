"""Shared fixtures: one torch thread (tests run beside each other on 2 cores), a synthetic evaluator."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from archsearch.evaluators import register_evaluator, EVALUATORS
from archsearch.result import Result
from archsearch.space import Architecture, SearchSpace

torch.set_num_threads(1)


def pytest_configure(config):
    """The suite's worker pools all fork from one fork server (one per test process): start it now with every
    module their trials import, so that no pool pays for them again — the first preload list set before the
    server starts wins, and a test of the benchmark's pool would otherwise set one without torch._dynamo (the
    first FLOP count of a process imports it: 2.4 s of each worker's first trial)."""
    import multiprocessing as mp
    from multiprocessing import forkserver

    controller = getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput")
    if "forkserver" in mp.get_all_start_methods() and not controller:  # xdist's controller runs no test
        mp.get_context("forkserver").set_forkserver_preload(
            ["torch", "torch._dynamo", "archsearch.evaluators.training", "archsearch.benchmark"])
        forkserver.ensure_running()


class SyntheticEvaluator:
    """A fixed synthetic objective: the share of decisions that match a hidden target architecture (percent)."""

    def __init__(self, space: SearchSpace, target_seed: int = 123, fail_every: int = 0):
        self.space = space
        self.target = space.sample(np.random.default_rng(target_seed))
        self.fail_every = fail_every
        self.calls = 0

    def config(self):
        return {"target_seed": 123}

    def evaluate(self, arch: Architecture, seed: int = 0, fidelity=None) -> Result:
        self.calls += 1
        if self.fail_every and self.calls % self.fail_every == 0:
            raise RuntimeError("synthetic crash")
        score = 100.0 * np.mean([arch[k] == self.target[k] for k in self.space.labels])
        return Result(metrics={"val_accuracy": score, "test_accuracy": score})


if "synthetic" not in EVALUATORS:
    register_evaluator("synthetic")(SyntheticEvaluator)


def synthetic_score(space: SearchSpace, arch: Architecture, target: Architecture) -> float:
    return 100.0 * float(np.mean([arch[k] == target[k] for k in space.labels]))


def drive(strategy, space: SearchSpace, target: Architecture, n: int) -> tuple[float, list[Architecture]]:
    """Ask and tell ``n`` times on the synthetic score: the best score reached and the architectures asked."""
    from archsearch.result import Observation
    best, asked = -1.0, []
    for t in range(n):
        arch = strategy.ask()
        v = synthetic_score(space, arch, target)
        strategy.tell(Observation(arch, v, trial=t))
        best = max(best, v)
        asked.append(arch)
    return best, asked


def user_space(c, shape):
    """The README's user-defined space."""
    width = c.value("width", [8, 16])
    act = c.layer("act", {"relu": nn.ReLU, "gelu": nn.GELU})
    conv = c.layer("conv", {"3x3": lambda: nn.Conv2d(shape.channels, width, 3, padding=1),
                            "5x5": lambda: nn.Conv2d(shape.channels, width, 5, padding=2)})
    return nn.Sequential(conv, act, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, shape.num_classes))


def digits_npz(path, n: int) -> str:
    """The first ``n`` embedded digits as an .npz file (x scaled to [0, 1], y) at ``path``; its path."""
    from sklearn.datasets import load_digits
    d = load_digits()
    np.savez(path, x=(d.images[:n] / 16.0).astype(np.float32), y=d.target[:n])
    return str(path)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """The CLI called in this process (no interpreter start-up): exit code, stdout, stderr."""
    from archsearch.cli import main

    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in argv])
    out = capsys.readouterr()
    return e.value.code, out.out, out.err
