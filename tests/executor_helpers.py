"""Evaluators that misbehave on purpose, for the executor tests (imported by worker processes too)."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np

from archsearch.result import Result


class Misbehaving:
    """Scores like the synthetic objective; trial ``victim`` kills its worker (first attempt only, unless
    ``always``) or hangs, depending on ``mode``."""

    def __init__(self, space, marker_dir: str, victim: int = 2, mode: str = "kill", always: bool = False,
                 seconds: float = 0.05, start_deaths: int = 0):
        self.space = space
        self.start_deaths = start_deaths  # the first N worker processes that unpickle it die while starting
        self.target = space.sample(np.random.default_rng(123))
        self.marker_dir, self.victim, self.mode, self.always, self.seconds = marker_dir, victim, mode, always, seconds

    def __setstate__(self, state):
        self.__dict__.update(state)
        if os.getpid() != state.get("_driver", os.getpid()):
            deaths = len(list(Path(self.marker_dir).glob("start-death-*")))
            if deaths < self.start_deaths:
                (Path(self.marker_dir) / f"start-death-{deaths}").touch()
                os.kill(os.getpid(), signal.SIGKILL)

    def __getstate__(self):
        return {**self.__dict__, "_driver": os.getpid()}

    def config(self):
        return {}

    def evaluate(self, arch, seed=0, fidelity=None):
        time.sleep(self.seconds)
        marker = Path(self.marker_dir) / f"seen-{seed}"
        if self.victim >= 0 and seed == _seed_of(self.victim) and (self.always or not marker.exists()):
            marker.touch()
            if self.mode == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(3600)
        score = 100.0 * np.mean([arch[k] == self.target[k] for k in self.space.labels])
        import torch
        return Result(metrics={"val_accuracy": score, "test_accuracy": score, "pid": float(os.getpid()),
                               "threads": float(torch.get_num_threads())})


def _seed_of(number: int) -> int:
    from archsearch.study import trial_seed
    return trial_seed(0, number)
