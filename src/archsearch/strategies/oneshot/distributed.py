"""Data-parallel one-shot search: one supernet search spread over N processes (``--workers N``).

Every rank holds the whole supernet and the same seeded generator, so all ranks draw the same batch order, the
same Gumbel noise and the same sampled paths; each takes its own 1/N slice of every batch, and the gradients of
the weights and of the architecture parameters are averaged over the ranks (``all_reduce``, gloo on CPU, NCCL on
GPU) before every optimiser step — what ``torch.nn.parallel.DistributedDataParallel`` does. The averaging is
written out here rather than by wrapping the model in DDP because the one-shot strategies step w and α
separately with ``backward(inputs=...)`` on different paths of the supernet, and second-order DARTS takes
gradients with ``torch.autograd.grad``: DDP's hooks see neither. So weights and α stay identical on every rank;
BatchNorm running statistics (computed per rank on its slice, as under DDP without SyncBatchNorm) are averaged
at the end of every epoch, and validation accuracies are computed on slices and summed.

Rank 0 is the study's own process (it writes the run store and checkpoints); ranks 1..N-1 are started by
:func:`launch` as local processes (``process``) or Ray actors (``ray``, which also reaches other machines of a
Ray cluster) and run the same epochs, told by rank 0 before each one whether to go on.
"""
from __future__ import annotations

import datetime
import multiprocessing as mp
import os
import socket
import traceback
import types
from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.distributed as dist

from ...errors import UserError

#: Strategies whose every update is a gradient step of w or α (the ones data parallelism applies to as is).
SUPPORTED = ("darts", "darts2", "gdas", "proxyless", "fbnet")
TIMEOUT = datetime.timedelta(seconds=600)


@dataclass
class DataParallel:
    """This process's place in the group, and the collective operations the one-shot loop needs."""

    rank: int
    world: int

    def shard(self, idx: torch.Tensor) -> torch.Tensor:
        """This rank's slice of a batch (given as indices)."""
        return idx.tensor_split(self.world)[self.rank]

    def average(self, tensors: Sequence[torch.Tensor | None]) -> None:
        """Average tensors (gradients) over the ranks, in place, in one ``all_reduce``."""
        present = [t for t in tensors if t is not None]
        if not present:
            return
        flat = torch.cat([t.detach().reshape(-1) for t in present])
        dist.all_reduce(flat)
        flat /= self.world
        i = 0
        for t in present:
            n = t.numel()
            t.detach().copy_(flat[i:i + n].view_as(t))
            i += n

    def average_grads(self, params: Sequence[torch.Tensor]) -> None:
        """Average ``.grad`` of ``params``. A parameter that has no gradient on any rank (off the sampled path)
        keeps none, so the optimiser skips it as in a single process; one with a gradient on some ranks only
        counts as zero on the others."""
        params = list(params)
        has = torch.tensor([p.grad is not None for p in params], dtype=torch.uint8)
        dist.all_reduce(has, op=dist.ReduceOp.MAX)
        used = [p for p, h in zip(params, has.tolist()) if h]
        for p in used:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        self.average([p.grad for p in used])

    def average_buffers(self, model: torch.nn.Module) -> None:
        """Average the floating-point buffers (BatchNorm running statistics) over the ranks."""
        self.average([b for b in model.buffers() if b.is_floating_point()])

    def sync_batchnorm(self, model: torch.nn.Module) -> None:
        """Make every BatchNorm of ``model`` normalise training batches by the statistics of the whole batch over
        all ranks (as ``torch.nn.SyncBatchNorm``, which runs on GPUs only), so a data-parallel step computes what
        a single process computes on the whole batch."""
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.forward = types.MethodType(_synced_bn_forward, m)

    def sum(self, values: Sequence[float]) -> list[float]:
        t = torch.tensor([float(v) for v in values], dtype=torch.float64)
        dist.all_reduce(t)
        return t.tolist()

    def go_on(self, flag: bool) -> bool:
        """Rank 0's decision (another epoch or not), broadcast to every rank."""
        t = torch.tensor([1 if flag else 0])
        dist.broadcast(t, 0)
        return bool(t.item())


class _AllReduce(torch.autograd.Function):
    """Sum over the ranks whose backward pass sums the gradients over the ranks as well."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def _synced_bn_forward(self: torch.nn.modules.batchnorm._BatchNorm, x: torch.Tensor) -> torch.Tensor:
    if not self.training or not dist.is_initialized():
        return type(self).forward(self, x)
    dims = [0] + list(range(2, x.dim()))
    n = torch.tensor([x.numel() / x.shape[1]], dtype=x.dtype, device=x.device)
    stats = torch.cat([x.sum(dims), (x * x).sum(dims), n])
    stats = _AllReduce.apply(stats)
    c = x.shape[1]
    total = stats[-1]
    mean = stats[:c] / total
    var = (stats[c:2 * c] / total - mean * mean).clamp_min(0.0)
    if self.track_running_stats and self.running_mean is not None:
        with torch.no_grad():
            self.num_batches_tracked += 1
            mom = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
            self.running_mean.mul_(1 - mom).add_(mom * mean.detach())
            self.running_var.mul_(1 - mom).add_(mom * var.detach() * total / max(1.0, float(total) - 1))
    shape = [1, c] + [1] * (x.dim() - 2)
    y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
    if self.affine:
        y = y * self.weight.view(shape) + self.bias.view(shape)
    return y


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def init_group(rank: int, world: int, addr: str, port: int, device: torch.device) -> DataParallel:
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, init_method=f"tcp://{addr}:{port}", rank=rank, world_size=world,
                            timeout=TIMEOUT)
    return DataParallel(rank, world)


def close_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def rank_main(rank: int, world: int, addr: str, port: int, config: dict[str, Any], checkpoint: str | None,
              threads: int) -> None:
    """Ranks 1..N-1: build the same strategy, load the same checkpoint, run epochs while rank 0 says so."""
    torch.set_num_threads(max(1, threads))
    from ...evaluators.training import cached_data
    from ...spaces import get_space
    from .base import make_oneshot

    space = get_space(config["space"]["name"], **config["space"]["config"])
    strategy = make_oneshot(config["strategy"]["name"], space, cached_data(config.get("data")),
                            config["budget"]["epochs"], seed=config["seed"], device=_rank_device(config, rank),
                            **config["strategy"]["options"])
    if checkpoint and os.path.exists(checkpoint):
        strategy.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=False)["strategy"])
    strategy.dp = init_group(rank, world, addr, port, strategy.device)
    strategy.dp.sync_batchnorm(strategy.model)
    try:
        while strategy.dp.go_on(False):
            strategy.run_epoch()
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

    def __init__(self, kind: str, handles: list[Any]):
        self.kind, self.handles = kind, handles

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
           address: str | None = None) -> tuple[Ranks, str, int]:
    """Start ranks 1..world-1 (rank 0 is the caller); returns them and the rendezvous address."""
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
    ctx = mp.get_context("spawn")
    procs = []
    for r in range(1, world):
        p = ctx.Process(target=_process_entry, args=(r, world, addr, port, config, checkpoint, threads),
                        daemon=True)
        p.start()
        procs.append(p)
    return Ranks("process", procs), addr, port
