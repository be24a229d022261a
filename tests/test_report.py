"""archsearch report: a self-contained HTML page plus PNGs for black-box, multi-objective and one-shot runs; every
space's architecture drawing; a screenshot in headless Chromium when one is installed."""
from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

from archsearch.cli import main
from archsearch.evaluators import EVALUATORS, register_evaluator
from archsearch.objective import parse_objective
from archsearch.report import write_report
from archsearch.report.draw import draw_architecture
from archsearch.result import Result
from archsearch.spaces import get_space
from archsearch.study import Budget, Study

from conftest import digits_npz


class CostEvaluator:
    """Accuracy and a parameter count that trade off (wider layers: more accurate and bigger), no training."""

    def __init__(self, space):
        self.space = space

    def config(self):
        return {}

    def evaluate(self, arch, seed=0, fidelity=None):
        width = sum(v for k, v in arch.items() if k.endswith("_filters"))
        acc = 60 + 30 * (1 - np.exp(-width / 60)) + (seed % 7) * 0.3
        return Result(metrics={"val_accuracy": acc, "test_accuracy": acc - 0.5, "params": 100.0 * width})


if "test-cost" not in EVALUATORS:
    register_evaluator("test-cost")(CostEvaluator)


def _sections(html: str) -> list[str]:
    return re.findall(r"<h2>(.*?)</h2>", html)


def _self_contained(html: str) -> None:
    srcs = re.findall(r'src="([^"]*)"', html)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "<script" not in html and "http://" not in html and "https://" not in html


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    out = {}
    s = Study.create(space="macro", strategy="random", evaluator="synthetic", budget=Budget(trials=8), seed=0,
                     space_config={"layers": 3}, run_dir=root / "blackbox")
    s.run()
    out["blackbox"] = root / "blackbox"
    s = Study.create(space="macro", strategy="random", evaluator="test-cost", budget=Budget(trials=10), seed=0,
                     space_config={"layers": 3}, objective=parse_objective("pareto:val_accuracy,min:params"),
                     run_dir=root / "pareto")
    s.run()
    out["pareto"] = root / "pareto"
    return out


@pytest.fixture(scope="module")
def oneshot_run(tmp_path_factory):
    from archsearch.oneshot_study import OneShotStudy

    root = tmp_path_factory.mktemp("oneshot")
    npz = digits_npz(root / "d.npz", 200)
    study = OneShotStudy.create(space="nb201", strategy="darts", epochs=2, seed=0,
                                space_config={"channels": 4, "cells_per_stage": 1},
                                strategy_options={"batch_size": 32, "bn_batches": 1},
                                evaluator_options={"data": str(npz), "epochs": 1, "batch_size": 32}, data=str(npz),
                                run_dir=root / "darts")
    study.run()
    return root / "darts"


def test_blackbox_report_has_every_section_and_is_self_contained(runs):
    rep = write_report(runs["blackbox"])
    html = rep.html.read_text()
    assert _sections(html) == ["Summary", "Search progress", "Distribution of results",
                               "Found vs hand-designed reference", "Best architecture", "Trials"]
    _self_contained(html)
    assert {"progress", "distribution", "architecture"} <= set(rep.figures)
    assert all(p.is_file() and p.read_bytes()[:4] == b"\x89PNG" for p in rep.figures.values())
    assert html.count("<tr") >= 8 and 'class="best"' in html


def test_multi_objective_report_shows_the_pareto_front(runs, tmp_path):
    rep = write_report(runs["pareto"], tmp_path / "r")
    html = rep.html.read_text()
    assert "Pareto front" in _sections(html) and "pareto" in rep.figures
    assert rep.html.parent == tmp_path / "r"
    _self_contained(html)


def test_oneshot_report_shows_architecture_weights_over_epochs(oneshot_run):
    rep = write_report(oneshot_run)
    html = rep.html.read_text()
    assert "Architecture weights over epochs" in _sections(html) and "alphas" in rep.figures
    assert "epoch 2:" in html  # the architecture derived after each epoch
    _self_contained(html)


@pytest.mark.parametrize("space, config", [("cell", {"channels": 4, "layers": 3}), ("nb201", {}),
                                           ("macro", {"layers": 4}), ("mbconv", {})])
def test_every_space_is_drawn(space, config, tmp_path):
    sp = get_space(space, **config)
    draw_architecture(sp, sp.sample(np.random.default_rng(1)), tmp_path / "a.png")
    assert (tmp_path / "a.png").stat().st_size > 5000


def test_cli_report_and_its_errors(runs, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["report", str(runs["blackbox"]), "--out", str(tmp_path / "cli")])
    assert e.value.code == 0 and (tmp_path / "cli" / "report.html").is_file()
    with pytest.raises(SystemExit) as e:
        main(["report", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and err.startswith("error:") and "not an archsearch run directory" in err


CHROMIUM = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome", "chrome")
                 if shutil.which(b)), None)


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(runs, tmp_path):
    rep = write_report(runs["pareto"], tmp_path / "r")
    shot = tmp_path / "screenshot.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--screenshot={shot}", "--window-size=1280,2000", rep.html.resolve().as_uri()],
                   check=True, capture_output=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 20_000  # a rendered page, not a blank one


def test_alpha_candidates_of_cell_supernet_edges_and_space_decisions():
    from archsearch.genotypes import DEFAULT_CELL_OPS
    from archsearch.report import _candidates

    assert _candidates(get_space("cell"), "reduce_n3_e4") == ["none", *DEFAULT_CELL_OPS]
    assert _candidates(get_space("nb201"), "2<-1") == list(get_space("nb201").decision("2<-1").options)


EVIL = '<script>alert("x")</script>'


def evil_space(c, shape):
    from torch import nn
    act = c.layer(EVIL, {EVIL: nn.ReLU, "tanh": nn.Tanh})
    width = c.value("width&<b>", [4, 8])
    return nn.Sequential(nn.Flatten(), nn.Linear(shape.channels * shape.height * shape.width, width), act,
                         nn.Linear(width, shape.num_classes))


class EvilEvaluator:
    """Metrics from the width; the evil choice fails with an error that carries markup."""

    def __init__(self, space):
        self.space = space

    def config(self):
        return {}

    def evaluate(self, arch, seed=0, fidelity=None):
        if arch[EVIL] == EVIL and arch["width&<b>"] == 4:
            return Result(metrics={}, status="failed", error=f"crash {EVIL}")
        return Result(metrics={"val_accuracy": 50.0 + arch["width&<b>"], "test_accuracy": 50.0, "params": 10.0})


def test_report_escapes_every_string_from_the_space_data_and_options(tmp_path):
    """A choice label, a decision name, a trial's error and the data option all carry <script>: the page has no
    script element, only escaped text (issue 19)."""
    from archsearch.spaces import SPACES, register_space
    if "test-evil" not in SPACES:
        register_space("test-evil")(evil_space)
    if "test-evil" not in EVALUATORS:
        register_evaluator("test-evil")(EvilEvaluator)
    run = tmp_path / EVIL.replace("/", "_")
    Study.create(space="test-evil", strategy="grid", evaluator="test-evil", budget=Budget(trials=4), seed=0,
                 run_dir=run, reference=False).run()
    html = write_report(run).html.read_text()
    assert "<script" not in html.lower()
    assert "&lt;script&gt;" in html and "width&amp;&lt;b&gt;" in html
