"""Export a found model for deployment, and check the exported file against PyTorch.

* ``onnx``: ``torch.onnx.export`` (the ``torch.export``-based exporter, which needs ``onnxscript``; without it
  the TorchScript-based one), batch dimension dynamic; checked by running the file in onnxruntime.
* ``torchscript``: ``torch.jit.trace``; checked by loading the file with ``torch.jit.load``.
* ``export``: ``torch.export`` (an ``ExportedProgram`` saved with ``torch.export.save``, a ``.pt2`` file), batch
  dimension dynamic; checked by loading it with ``torch.export.load``.

The check runs the original and the exported model on the same seeded inputs (batch 1 and batch 3) and fails
when any output differs by more than ``atol + rtol * |expected|``.
"""
from __future__ import annotations

import contextlib
import io
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import torch
from torch import nn

from ..errors import UserError

FORMATS = ("onnx", "torchscript", "export")
SUFFIX = {"onnx": ".onnx", "torchscript": ".pt", "export": ".pt2"}


class ExportMismatch(RuntimeError):
    """The exported model's outputs differ from PyTorch's."""


@dataclass(frozen=True)
class ExportReport:
    path: Path
    format: str
    checked_with: str | None  # onnxruntime, torch.jit.load, torch.export.load (None: not checked)
    max_abs_diff: float | None
    exporter: str


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Exporters print progress and deprecation notes; keep the command's output clean."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, lv in zip(loggers, levels):
            lg.setLevel(lv)


def _inputs(input_size: Sequence[int], batches: Sequence[int] = (1, 3)) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return [torch.randn((b, *[int(d) for d in input_size]), generator=gen) for b in batches]


def export_model(model: nn.Module, input_size: Sequence[int], path: str | Path, fmt: str, check: bool = True,
                 rtol: float = 1e-3, atol: float = 1e-4) -> ExportReport:
    """Write ``model`` (in eval mode, on the CPU) to ``path`` in format ``fmt`` and, with ``check``, compare the
    file's outputs with PyTorch's. Raises UserError for an unknown format, ExportMismatch when outputs differ."""
    if fmt not in FORMATS:
        raise UserError(f"unknown export format {fmt!r}; choose from: {', '.join(FORMATS)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.cpu().eval()
    example = _inputs(input_size, (2,))[0]
    batch = torch.export.Dim("batch", min=1, max=65536)
    with torch.no_grad(), _quiet():
        if fmt == "onnx":
            exporter = _export_onnx(model, example, path, batch)
        elif fmt == "torchscript":
            torch.jit.trace(model, example, check_trace=False).save(str(path))  # checked below, on the file
            exporter = "torch.jit.trace"
        else:
            torch.export.save(torch.export.export(model, (example,), dynamic_shapes=({0: batch},)), str(path))
            exporter = "torch.export"
    if not check:
        return ExportReport(path, fmt, None, None, exporter)
    runner, name = _runner(fmt, path)
    worst = 0.0
    for x in _inputs(input_size):
        with torch.no_grad():
            want = model(x).numpy()
        got = runner(x)
        diff = abs(got - want)
        worst = max(worst, float(diff.max()))
        if (diff > atol + rtol * abs(want)).any():
            raise ExportMismatch(f"{path}: {name} output differs from PyTorch by up to {float(diff.max()):.3g} "
                                 f"(batch {x.shape[0]})")
    return ExportReport(path, fmt, name, worst, exporter)


def _export_onnx(model: nn.Module, example: torch.Tensor, path: Path, batch) -> str:
    try:
        import onnxscript  # noqa: F401  (the torch.export-based exporter needs it)
    except ImportError:
        torch.onnx.export(model, (example,), str(path), dynamo=False, input_names=["input"],
                          output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
        return "torch.onnx (TorchScript-based)"
    torch.onnx.export(model, (example,), str(path), dynamo=True, verbose=False, input_names=["input"],
                      output_names=["logits"], dynamic_shapes=({0: batch},), external_data=False)
    return "torch.onnx (torch.export-based)"


def _runner(fmt: str, path: Path):
    if fmt == "onnx":
        try:
            import onnxruntime as ort
        except ImportError:
            raise UserError("checking an ONNX export needs onnxruntime: pip install 'archsearch[export]' "
                            "(or pass --no-check)") from None
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        return (lambda x: sess.run(None, {name: x.numpy()})[0]), f"onnxruntime {ort.__version__}"
    if fmt == "torchscript":
        with _quiet():
            loaded = torch.jit.load(str(path))

        def run_ts(x):
            with torch.no_grad(), _quiet():
                return loaded(x).numpy()
        return run_ts, "torch.jit.load"
    with _quiet():
        program = torch.export.load(str(path)).module()

    def run_ep(x):
        with torch.no_grad():
            return program(x).numpy()
    return run_ep, "torch.export.load"
