"""Export of found models to ONNX (checked in onnxruntime), TorchScript and torch.export, from Python and from a
run directory with ``archsearch export``."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from archsearch.cli import main
from archsearch.errors import UserError
from archsearch.hardware.export import ExportMismatch, export_model
from archsearch.spaces import get_space
from archsearch.study import Budget, Study

from test_mbconv import DIGITS, TINY


def tiny_model():
    """Two MBConv blocks (one with squeeze-and-excite and h-swish): small graphs export fastest."""
    space = get_space("mbconv", **{**TINY, "widths": [[8], [8], [8]], "depths": [[1], [1], [1]]})
    torch.manual_seed(0)
    model = space.build(space.parse("8x1(k3e1) 8x1(k5e3+se/hs) 8x1(k3e3)"), DIGITS)
    with torch.no_grad():  # non-trivial BN statistics, so that a wrong export would show
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
    return model


@pytest.mark.parametrize("fmt", ["onnx", "torchscript", "export"])
def test_export_and_check_every_format(tmp_path, fmt):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
    report = export_model(tiny_model(), DIGITS.size, tmp_path / f"m.{fmt}", fmt)
    assert report.path.is_file() and report.checked_with and report.max_abs_diff < 1e-4


class Drifting(nn.Module):
    """A model whose traced graph differs from its Python forward (a side effect on every call)."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return x.flatten(1) * self.calls


def test_a_file_that_disagrees_with_pytorch_is_caught(tmp_path):
    with pytest.raises(ExportMismatch, match="differs"):
        export_model(Drifting(), (1, 2, 2), tmp_path / "m.pt", "torchscript")


def test_unknown_format_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="unknown export format"):
        export_model(tiny_model(), DIGITS.size, tmp_path / "m.x", "tflite")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("runs") / "run"
    Study.create(space="mbconv", strategy="random", evaluator="train", budget=Budget(trials=1), seed=0,
                 space_config=TINY, evaluator_options={"epochs": 1}, run_dir=path).run()
    return path


def cli(capsys, *args):
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
def test_cli_export_from_a_run(run_dir, tmp_path, capsys):
    code, out, err = cli(capsys, "export", run_dir, "--format", "torchscript", "-o", tmp_path / "best.pt")
    assert code == 0, err
    assert "checked with torch.jit.load" in out
    loaded = torch.jit.load(str(tmp_path / "best.pt"))
    assert loaded(torch.randn(2, 1, 8, 8)).shape == (2, 10)


@pytest.mark.parametrize("args, message", [
    (["--format", "tflite"], "unknown export format 'tflite'"),
    (["--format", "onnx", "--no-weights"], "no trained weights"),
])
def test_cli_export_errors(run_dir, tmp_path, capsys, args, message):
    target = run_dir
    if "--no-weights" in args:
        args = [a for a in args if a != "--no-weights"]
        target = tmp_path / "copy"
        import shutil
        shutil.copytree(run_dir, target)
        (target / "best.pt").unlink()
    code, _, err = cli(capsys, "export", target, *args, "-o", tmp_path / "m.out")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err
