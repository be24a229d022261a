"""Starting and running the ranks 1..N-1 of a data-parallel one-shot search (:mod:`.distributed` has the
collectives): local processes (``process``) or Ray actors (``ray``), each building the same strategy from the run's
config and stepping with rank 0, told before every epoch whether to go on."""
from __future__ import annotations

import multiprocessing as mp
import os
import traceback
from typing import Any

import torch

from ...errors import UserError
from ...safeload import safe_load
from .distributed import SharedMemoryComm, close_group, free_port, init_group


def rank_main(rank: int, world: int, addr: str, port: int, config: dict[str, Any], checkpoint: str | None,
              threads: int, shared: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
    """Ranks 1..N-1: build the same strategy, load the same checkpoint, run epochs while rank 0 says so."""
    torch.set_num_threads(max(1, threads))
    from ...datasets import cached_data
    from ...spaces import get_space
    from .base import make_oneshot

    space = get_space(config["space"]["name"], **config["space"]["config"])
    strategy = make_oneshot(config["strategy"]["name"], space, cached_data(config.get("data")),
                            config["budget"]["epochs"], seed=config["seed"], device=_rank_device(config, rank),
                            **config["strategy"]["options"])
    if checkpoint and os.path.exists(checkpoint):
        strategy.load_state_dict(safe_load(checkpoint)["strategy"])
    parent = os.getppid()
    strategy.dp = init_group(rank, world, addr, port, strategy.device, shared,
                             alive=(lambda: os.getppid() == parent) if shared is not None else None)
    if config["parallel"].get("sync_bn", True):
        strategy.dp.sync_batchnorm(strategy.model)
    try:
        while strategy.dp.go_on(False):
            strategy.run_epoch()
    except BaseException:
        strategy.dp.comm.fail()
        raise
    finally:
        close_group()


def _rank_device(config: dict[str, Any], rank: int) -> str | None:
    dev = config.get("device")
    if (dev in (None, "auto", "cuda")) and torch.cuda.is_available():
        return f"cuda:{rank % torch.cuda.device_count()}"
    return dev


def _process_entry(*args) -> None:
    try:
        rank_main(*args)
    except BaseException:  # noqa: BLE001 - reported by rank 0 as a failed rank
        traceback.print_exc()
        raise


class Ranks:
    """The started ranks 1..N-1; :meth:`join` waits for them and names the first that failed."""

    def __init__(self, kind: str, handles: list[Any], shared: tuple[torch.Tensor, torch.Tensor] | None = None):
        self.kind, self.handles, self.shared = kind, handles, shared

    def alive(self) -> bool:
        """Whether every started rank is still running (process ranks; Ray ranks count as alive)."""
        return self.kind != "process" or all(p.is_alive() or p.exitcode == 0 for p in self.handles)

    def join(self, timeout: float = 60.0) -> None:
        if self.kind == "process":
            for p in self.handles:
                p.join(timeout)
            bad = [p for p in self.handles if p.exitcode not in (0, None)]
            for p in self.handles:
                if p.is_alive():
                    p.kill()
            if bad:
                raise RuntimeError(f"a data-parallel rank exited with code {bad[0].exitcode}")
        else:
            import ray
            ray.get(self.handles, timeout=timeout)

    def kill(self) -> None:
        if self.kind == "process":
            for p in self.handles:
                if p.is_alive():
                    p.kill()
        else:
            import ray
            for ref in self.handles:
                ray.cancel(ref, force=True)


def launch(executor: str, world: int, config: dict[str, Any], checkpoint: str | None, threads: int,
           address: str | None = None, transport: str = "auto") -> tuple[Ranks, str, int]:
    """Start ranks 1..world-1 (rank 0 is the caller); returns them and the rendezvous address. ``transport``
    (checked by ``OneShotStudy.create``): ``auto`` (shared memory for local CPU processes, else torch.distributed),
    ``shm`` or ``dist``."""
    if executor == "ray":
        try:
            import ray
        except ImportError:
            raise UserError("--executor ray needs Ray: pip install 'archsearch[ray]'") from None
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": {"OMP_NUM_THREADS": str(threads)}})
        addr = ray.util.get_node_ip_address()
        port = free_port()
        remote = ray.remote(num_cpus=threads)(rank_main)
        refs = [remote.remote(r, world, addr, port, config, checkpoint, threads) for r in range(1, world)]
        return Ranks("ray", refs), addr, port
    if executor != "process":
        raise UserError(f"data-parallel one-shot search runs on the 'process' or 'ray' executor, not {executor!r}")
    addr, port = "127.0.0.1", free_port()
    on_cpu = _rank_device(config, 0) in (None, "cpu", "auto")
    shared = SharedMemoryComm.allocate(world) if transport == "shm" or (transport == "auto" and on_cpu) else None
    ctx = mp.get_context("spawn")
    procs = []
    for r in range(1, world):
        p = ctx.Process(target=_process_entry,
                        args=(r, world, addr, port, config, checkpoint, threads, shared), daemon=True)
        p.start()
        procs.append(p)
    return Ranks("process", procs, shared), addr, port
