"""What an architecture costs: parameters, FLOPs / multiply-adds, and latency measured on a device.

FLOPs come from PyTorch's own counter (``torch.utils.flop_counter.FlopCounterMode``), which counts the matrix
products and convolutions (2 FLOPs per multiply-add; elementwise ops, pooling and normalisation are not
counted). ``macs`` = FLOPs / 2 is the "multiply-adds" (MAdds) figure mobile-network papers report. Counting
runs on the meta device when it can: no memory, no arithmetic, a few milliseconds even at 224 x 224.

Latency is measured the way MnasNet and ProxylessNAS measure it on a phone, adapted to a shared machine:
batch 1 by default, warm-up runs, then the median of timed repeats (robust to the odd interruption), in
inference mode, with a fixed number of CPU threads (default 1, so that a measurement never takes more than one
core from a running search), optionally pinned to one core; on CUDA, timed with CUDA events after
synchronisation. ``clock="cpu"`` times the calling thread's CPU time instead of the wall clock (with one thread
the forward pass runs on it): time the scheduler gives to other processes is then not counted, which keeps
measurements on a busy shared machine close to what an idle one gives (contention for caches and memory
bandwidth still shows). A file lock makes measurements of the archsearch processes of one machine (parallel workers,
several searches) take turns, so that two never disturb each other. The load average at the start is recorded
with the result, so that a noisy measurement can be recognised afterwards.
"""
from __future__ import annotations

import contextlib
import copy
import os
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Sequence

import torch
from torch import nn

__all__ = ["count_params", "count_flops", "LatencyStats", "measure_latency", "latency_lock", "model_cost",
           "Cost"]


def count_params(model: nn.Module) -> int:
    """Number of parameters (trainable or not)."""
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, input_size: Sequence[int], batch: int = 1) -> int:
    """FLOPs of one forward pass on a ``batch`` of ``input_size`` (C, H, W) inputs, as counted by
    ``torch.utils.flop_counter`` (a multiply-add is 2 FLOPs). Tried on the meta device first (a copy of the
    model with no storage), then on the model's own device, in eval mode and without gradients."""
    from torch.utils.flop_counter import FlopCounterMode

    shape = (batch, *[int(d) for d in input_size])
    try:
        meta = _meta_copy(model)
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            meta(torch.empty(shape, device="meta"))
        return int(counter.get_total_flops())
    except Exception:  # an op without a meta kernel: count on real tensors
        pass
    device = next(model.parameters(), torch.empty(0)).device
    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(torch.zeros(shape, device=device))
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def _meta_copy(model: nn.Module) -> nn.Module:
    """A deep copy of the module structure on the meta device (parameters and buffers without storage)."""
    memo = {}
    for t in list(model.parameters()) + list(model.buffers()):
        memo[id(t)] = t.to("meta") if not isinstance(t, nn.Parameter) else nn.Parameter(t.to("meta"), t.requires_grad)
    m = copy.deepcopy(model, memo)
    return m.eval()


@dataclass(frozen=True)
class Cost:
    """Static cost of a model at one input size: parameters, FLOPs and multiply-adds (FLOPs / 2)."""

    params: int
    flops: int

    @property
    def macs(self) -> int:
        return self.flops // 2

    def metrics(self) -> dict[str, float]:
        return {"params": float(self.params), "flops": float(self.flops), "macs": float(self.macs)}


def model_cost(model: nn.Module, input_size: Sequence[int]) -> Cost:
    """Parameters and FLOPs of ``model`` at batch 1."""
    return Cost(count_params(model), count_flops(model, input_size))


# --------------------------------------------------------------------------------------------------------------
# latency
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LatencyStats:
    """A latency measurement. Times in milliseconds; ``load1`` the 1-minute load average when it started."""

    median_ms: float
    mean_ms: float
    min_ms: float
    p90_ms: float
    repeats: int
    warmup: int
    batch: int
    threads: int | None
    device: str
    load1: float | None
    clock: str = "wall"

    def to_dict(self) -> dict:
        return asdict(self)


def _lock_path(device: torch.device) -> Path:
    tag = device.type if device.index is None else f"{device.type}{device.index}"
    return Path(tempfile.gettempdir()) / f"archsearch-latency-{tag}.lock"


@contextlib.contextmanager
def latency_lock(device: str | torch.device = "cpu", enabled: bool = True) -> Iterator[None]:
    """Machine-wide turn-taking for latency measurements on ``device`` (an advisory ``flock``; a no-op where
    file locks are unavailable)."""
    if not enabled:
        yield
        return
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    path = _lock_path(torch.device(device))
    with open(path, "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def _cpu_settings(threads: int | None, core: int | None) -> Iterator[None]:
    """Set the intra-op thread count (and pin the calling thread to ``core``) for the block, then restore."""
    old_threads = torch.get_num_threads()
    old_affinity = None
    if threads is not None:
        torch.set_num_threads(int(threads))
    if core is not None and hasattr(os, "sched_setaffinity"):
        old_affinity = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {int(core)})
    try:
        yield
    finally:
        if threads is not None:
            torch.set_num_threads(old_threads)
        if old_affinity is not None:
            os.sched_setaffinity(0, old_affinity)


_STEADY_ALLOCATOR: bool | None = None


def steady_allocator() -> bool:
    """Make this process's C allocator keep freed memory and serve large blocks from its heap (glibc
    ``mallopt``: mmap threshold and trim threshold at 1 GiB). By default glibc gives every block over a sliding
    threshold (128 KiB at first) its own ``mmap``, so each large activation of a forward pass is fresh memory whose
    page faults can cost more than the arithmetic — and whether a block is mapped depends on what the process
    allocated before, so the same network measured twice could differ by 1.5x (a 4.8 MB activation at 112x112:
    4 ms of work, 10-12 ms with faults). jemalloc and tcmalloc, which inference servers use, behave like the
    tuned allocator. Returns whether the setting took (glibc on Linux); elsewhere it does nothing. Idempotent."""
    global _STEADY_ALLOCATOR
    if _STEADY_ALLOCATOR is None:
        _STEADY_ALLOCATOR = False
        try:
            import ctypes
            libc = ctypes.CDLL("libc.so.6")
            m_trim_threshold, m_mmap_threshold = -1, -3
            _STEADY_ALLOCATOR = bool(libc.mallopt(m_mmap_threshold, 1 << 30)) and \
                bool(libc.mallopt(m_trim_threshold, 1 << 30))
        except (OSError, AttributeError):  # not glibc
            pass
    return _STEADY_ALLOCATOR


def measure_latency(model: nn.Module, input_size: Sequence[int], device: str | torch.device = "cpu",
                    batch: int = 1, threads: int | None = 1, warmup: int = 5, repeats: int = 30,
                    max_seconds: float | None = 2.0, min_repeats: int = 5, core: int | None = None,
                    lock: bool = True, copy_model: bool = True, clock: str = "wall") -> LatencyStats:
    """Median forward latency of ``model`` on ``device`` for a ``batch`` of ``input_size`` (C, H, W) inputs.

    ``warmup`` untimed runs, then up to ``repeats`` timed runs, stopping early once ``max_seconds`` of timed
    runs are spent (but never before ``min_repeats``). CPU: ``threads`` intra-op threads (None: leave as is),
    optionally pinned to ``core``. CUDA: CUDA events around each run, synchronised. The model is copied (unless
    ``copy_model`` is False), put in eval mode and moved to ``device``; the caller's model is left untouched.
    ``clock``: "wall" (default) or "cpu" (the thread's CPU time; CPU device with one thread only). On the CPU the
    process's allocator is first made steady (:func:`steady_allocator`), so page faults of fresh memory do not
    decide the number.
    """
    dev = torch.device(device)
    if clock not in ("wall", "cpu"):
        raise ValueError(f"unknown clock {clock!r}: use wall or cpu")
    if clock == "cpu" and (dev.type != "cpu" or threads != 1):
        raise ValueError("the cpu clock times one thread: use it on the CPU with threads=1")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("latency on CUDA was asked for, but CUDA is not available")
    if warmup < 0 or repeats < 1 or batch < 1:
        raise ValueError("measure_latency needs warmup >= 0, repeats >= 1 and batch >= 1")
    if dev.type == "cpu":
        steady_allocator()
    m = copy.deepcopy(model) if copy_model else model
    m = m.to(dev).eval()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn((batch, *[int(d) for d in input_size]), generator=gen).to(dev)
    load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    with latency_lock(dev, lock), _cpu_settings(threads if dev.type == "cpu" else None, core), \
            torch.inference_mode():
        times = _time_cuda(m, x, warmup, repeats, max_seconds, min_repeats) if dev.type == "cuda" \
            else _time_cpu(m, x, warmup, repeats, max_seconds, min_repeats, clock)
    times.sort()
    return LatencyStats(median_ms=statistics.median(times), mean_ms=statistics.fmean(times), min_ms=times[0],
                        p90_ms=times[min(len(times) - 1, int(round(0.9 * (len(times) - 1))))], repeats=len(times),
                        warmup=warmup, batch=batch, threads=threads if dev.type == "cpu" else None,
                        device=str(dev), load1=load1, clock=clock)


def _time_cpu(m: nn.Module, x: torch.Tensor, warmup: int, repeats: int, max_seconds: float | None,
              min_repeats: int, clock: str = "wall") -> list[float]:
    now = time.thread_time_ns if clock == "cpu" else time.perf_counter_ns
    for _ in range(warmup):
        m(x)
    times: list[float] = []
    spent = 0.0
    for _ in range(repeats):
        t0 = now()
        m(x)
        dt = (now() - t0) / 1e6
        times.append(dt)
        spent += dt / 1e3
        if max_seconds is not None and spent > max_seconds and len(times) >= min_repeats:
            break
    return times


def _time_cuda(m: nn.Module, x: torch.Tensor, warmup: int, repeats: int, max_seconds: float | None,
               min_repeats: int) -> list[float]:  # pragma: no cover - needs a GPU
    for _ in range(warmup):
        m(x)
    torch.cuda.synchronize(x.device)
    times: list[float] = []
    spent = 0.0
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        m(x)
        end.record()
        end.synchronize()
        dt = start.elapsed_time(end)
        times.append(dt)
        spent += dt / 1e3
        if max_seconds is not None and spent > max_seconds and len(times) >= min_repeats:
            break
    return times
