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

The collectives go through a :class:`Comm`. Ranks on one machine (the ``process`` executor on CPU) use
:class:`SharedMemoryComm`: every rank writes its tensor into its slot of a shared buffer, raises its sequence
number, waits for the others' and sums the slots in rank order — about 20 µs for a small all-reduce on two cores,
where gloo over TCP loopback takes about 1 ms; a synced BatchNorm all-reduces once per layer per pass, so that is
the difference between the search being slower and faster on two processes. Ranks that may sit on other machines
(``ray``) and GPUs use ``torch.distributed`` (gloo, NCCL).

Rank 0 is the study's own process (it writes the run store and checkpoints); ranks 1..N-1 are started by
:func:`.ranks.launch` as local processes (``process``) or Ray actors (``ray``, which also reaches other machines of a
Ray cluster) and run the same epochs, told by rank 0 before each one whether to go on.
"""
from __future__ import annotations

import datetime
import os
import socket
import time
import types
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.distributed as dist


#: Strategies whose every update is a gradient step of w or α (the ones data parallelism applies to as is).
SUPPORTED = ("darts", "darts2", "gdas", "proxyless", "fbnet")
TIMEOUT = datetime.timedelta(seconds=600)


class Comm:
    """The two collectives the search needs; this one is ``torch.distributed``'s (gloo on CPU, NCCL on GPU)."""

    def all_reduce(self, t: torch.Tensor) -> None:
        """Sum ``t`` over the ranks, in place (every rank gets the same values)."""
        dist.all_reduce(t)

    def broadcast(self, t: torch.Tensor) -> None:
        """Rank 0's ``t`` on every rank, in place."""
        dist.broadcast(t, 0)

    def close(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()

    def fail(self) -> None:
        """Tell the other ranks that this one failed (torch.distributed notices a lost peer by itself)."""


class SharedMemoryComm(Comm):
    """All-reduce among ranks on one machine through shared memory (see the module's docstring).

    ``buffers`` come from :meth:`allocate` in rank 0 and reach the other ranks as process arguments. Call ``k``
    writes into half ``k % 2`` of the buffer once every rank has finished call ``k - 1`` (so has read call
    ``k - 2``, the last user of that half), and reads when every rank has written call ``k``; each rank sums the
    slots in the same order in float64, so every rank gets bit-identical results. Waiting spins briefly, then
    yields the core, then sleeps; a rank that failed (flag in the last sequence slot), a dead peer (``alive``) or
    ``timeout`` seconds without progress ends the wait with an error instead of a hang."""

    CHUNK = 1 << 18  # elements per slot and call (2 MiB of float64); larger tensors go in chunks

    def __init__(self, rank: int, world: int, buffers: tuple[torch.Tensor, torch.Tensor],
                 alive: Callable[[], bool] | None = None, timeout: float = TIMEOUT.total_seconds()):
        self.rank, self.world = rank, world
        self.data, self.seq = buffers
        self.alive, self.timeout = alive, timeout
        self.k = int(self.seq[rank])
        if self.data.shape[-1] != self.CHUNK:
            raise ValueError("shared buffers of another chunk size")

    @classmethod
    def allocate(cls, world: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The shared buffers of a group of ``world`` ranks: two halves of one slot per rank, sequence numbers."""
        return (torch.zeros(2, world, cls.CHUNK, dtype=torch.float64).share_memory_(),
                torch.zeros(world + 1, dtype=torch.int64).share_memory_())

    def all_reduce(self, t: torch.Tensor) -> None:
        flat = t.detach().reshape(-1)  # a view of t when t is contiguous, else a copy
        for i in range(0, flat.numel(), self.CHUNK):
            self._reduce(flat[i:i + self.CHUNK])
        if not t.is_contiguous():
            t.detach().copy_(flat.view_as(t))

    def broadcast(self, t: torch.Tensor) -> None:
        if self.rank != 0:
            t.zero_()
        self.all_reduce(t)

    def close(self) -> None:
        pass

    def fail(self) -> None:
        """Tell the other ranks that this one failed (they stop waiting for it)."""
        self.seq[self.world] = 1

    def _reduce(self, x: torch.Tensor) -> None:
        k, n = self.k + 1, x.numel()
        self._wait(k - 1)
        slots = self.data[k % 2]
        slots[self.rank, :n].copy_(x)
        self.seq[self.rank] = k
        self._wait(k)
        x.copy_(slots[:, :n].sum(0))
        self.k = k

    def _wait(self, k: int) -> None:
        seq, world = self.seq, self.world
        if int(seq[:world].min()) >= k:
            return
        start = time.monotonic()
        spins = 0
        while int(seq[:world].min()) < k:
            spins += 1
            if spins < 64:
                continue
            waited = time.monotonic() - start
            if waited < 0.05:
                os.sched_yield()
                continue
            if int(seq[world]):
                raise RuntimeError("another data-parallel rank failed")
            if self.alive is not None and not self.alive():
                raise RuntimeError("a data-parallel rank died")
            if waited > self.timeout:
                raise RuntimeError(f"data-parallel ranks waited {waited:.0f} s for each other")
            time.sleep(0.0005)


#: The communicator of this process's group (used by the synced BatchNorm), None outside a data-parallel run.
_COMM: Comm | None = None


@dataclass
class DataParallel:
    """This process's place in the group, and the collective operations the one-shot loop needs."""

    rank: int
    world: int
    comm: Comm

    def shard(self, idx: torch.Tensor) -> torch.Tensor:
        """This rank's slice of a batch (given as indices)."""
        return idx.tensor_split(self.world)[self.rank]

    def average(self, tensors: Sequence[torch.Tensor | None]) -> None:
        """Average tensors (gradients) over the ranks, in place, in one all-reduce."""
        present = [t for t in tensors if t is not None]
        if not present:
            return
        flat = torch.cat([t.detach().reshape(-1) for t in present])
        self.comm.all_reduce(flat)
        flat /= self.world
        i = 0
        for t in present:
            n = t.numel()
            t.detach().copy_(flat[i:i + n].view_as(t))
            i += n

    def loss_scale(self, n: int) -> float:
        """The factor that makes a rank's mean loss over its ``n`` samples its share of the whole batch's mean
        loss, for gradients that are then averaged over the ranks: ``n * world / N`` (N: the whole batch). With
        slices of unequal size (a batch of 39 over 2 ranks: 20 + 19) a plain average of the slices' mean losses
        weights the samples unequally, and through the synchronised BatchNorm statistics the slices' gradients
        mix, so the weighting must be in the loss, not applied to the gradients afterwards."""
        total = torch.tensor([float(n)], dtype=torch.float64)
        self.comm.all_reduce(total)
        return n * self.world / float(total.item())

    def average_grads(self, params: Sequence[torch.Tensor]) -> None:
        """Average ``.grad`` of ``params``. A parameter that has no gradient on any rank (off the sampled path)
        keeps none, so the optimiser skips it as in a single process; one with a gradient on some ranks only
        counts as zero on the others."""
        params = list(params)
        has = torch.tensor([float(p.grad is not None) for p in params])
        self.comm.all_reduce(has)
        used = [p for p, h in zip(params, has.tolist()) if h > 0]
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
        self.comm.all_reduce(t)
        return t.tolist()

    def go_on(self, flag: bool) -> bool:
        """Rank 0's decision (another epoch or not), broadcast to every rank."""
        t = torch.tensor([1.0 if flag else 0.0])
        self.comm.broadcast(t)
        return bool(t.item())


class _AllReduce(torch.autograd.Function):
    """Sum over the ranks whose backward pass sums the gradients over the ranks as well."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        _COMM.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        _COMM.all_reduce(grad)
        return grad


def _synced_bn_forward(self: torch.nn.modules.batchnorm._BatchNorm, x: torch.Tensor) -> torch.Tensor:
    if not self.training or _COMM is None:
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


def init_group(rank: int, world: int, addr: str, port: int, device: torch.device,
               shared: tuple[torch.Tensor, torch.Tensor] | None = None,
               alive: Callable[[], bool] | None = None) -> DataParallel:
    """Join the group: through shared memory when rank 0 allocated ``shared`` buffers (and the device is a CPU),
    else through ``torch.distributed`` at ``addr:port``."""
    global _COMM
    if shared is not None and device.type == "cpu":
        comm: Comm = SharedMemoryComm(rank, world, shared, alive)
    else:
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, init_method=f"tcp://{addr}:{port}", rank=rank, world_size=world,
                                timeout=TIMEOUT)
        comm = Comm()
    _COMM = comm
    return DataParallel(rank, world, comm)


def close_group() -> None:
    global _COMM
    if _COMM is not None:
        _COMM.close()
    _COMM = None
