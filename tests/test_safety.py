"""Issue 19: one writer per run directory (a lock with a heartbeat, taken over after a kill), nothing loaded
from disk executes code (weights_only everywhere; planted pickle payloads never run), damaged state is one
line."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from archsearch.errors import UserError
from archsearch.runlock import acquire, holder
from archsearch.safeload import safe_load


class Payload:
    """Unpickling this would create ``path`` (what a malicious checkpoint would do, harmlessly)."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_a_second_writer_is_refused_naming_the_holder_and_a_killed_holder_is_taken_over(tmp_path):
    run = tmp_path / "run"
    code = f"import time; from archsearch.runlock import acquire; acquire({str(run)!r}); print('held', flush=True); " \
           "time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    with pytest.raises(UserError, match=f"in use by process {proc.pid}"):
        acquire(run)
    assert holder(run)["pid"] == proc.pid
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with acquire(run) as lock:  # the kernel freed the dead holder's lock: no manual cleanup
        assert holder(run)["pid"] == os.getpid()
        assert acquire(run) is lock  # the same process may take it again
        lock.release()


def test_planted_pickles_never_run(tmp_path):
    marker = tmp_path / "pwned"
    bad = tmp_path / "bad.pt"
    torch.save({"model": Payload(marker)}, bad)
    with pytest.raises(UserError, match="cannot be loaded safely"):
        safe_load(bad)
    assert not marker.exists()
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(UserError):
        safe_load(junk)


def test_planted_payloads_in_a_run_and_a_training_folder_never_run(tmp_path):
    from archsearch.cli import app
    run = tmp_path / "run"
    r = CliRunner().invoke(app, ["search", "--space", "macro", "--space-opt", "layers=2", "--strategy", "random",
                                 "--trials", "2", "--epochs", "3", "--scheduler", "asha", "--no-reference",
                                 "--out", str(run), "--quiet"])
    assert r.exit_code == 0, r.output
    marker = tmp_path / "pwned"
    torch.save({"x": Payload(marker)}, run / "best.pt")
    import archsearch
    with pytest.raises(UserError, match="cannot be loaded safely"):
        archsearch.load(run).model()
    # a multi-fidelity checkpoint: the trial that continues from it fails, the search goes on, nothing runs
    ckpt = next((run / "checkpoints").glob("trial-*.pt"))
    torch.save({"model": Payload(marker)}, ckpt)
    from archsearch.evaluators import EvaluatorSpec
    ev = EvaluatorSpec("macro", {"layers": 2}, "train", {"epochs": 3}).build()
    from archsearch.space import Architecture
    res = ev.evaluate(Architecture(archsearch.load(run).summary.trials[0].arch), 0, 3, checkpoint=str(ckpt),
                      horizon=3)
    assert res.status == "failed" and "cannot be loaded safely" in res.error
    # a final-training folder
    out = tmp_path / "final"
    r = CliRunner().invoke(app, ["train", str(run), "--epochs", "2", "--out", str(out), "--no-latency", "--quiet"])
    assert r.exit_code == 0, r.output
    torch.save({"model": Payload(marker)}, out / "checkpoint.pt")
    (out / "result.json").unlink(missing_ok=True)
    from archsearch.cli import main
    with pytest.raises(SystemExit) as e:
        main(["train", "--resume", str(out), "--quiet"])
    assert e.value.code == 2 and not marker.exists()


def test_a_damaged_run_database_is_one_line(tmp_path, capsys):
    from archsearch.cli import main
    run = tmp_path / "run"
    run.mkdir()
    (run / "study.db").write_bytes(b"SQLite format 3\x00" + os.urandom(2000))
    for cmd in (["show", str(run)], ["report", str(run)], ["search", "--resume", str(run)]):
        with pytest.raises(SystemExit) as e:
            main(cmd)
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("error:") and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_planted_payloads_in_a_one_shot_run_and_for_export_never_run(tmp_path, capsys):
    from archsearch.cli import main
    run = tmp_path / "oneshot"
    with pytest.raises(SystemExit) as e:
        main(["search", "--space", "nb201", "--space-opt", "channels=4", "--space-opt", "cells_per_stage=1",
              "--strategy", "darts", "--epochs", "2", "--train-epochs", "1", "--out", str(run), "--quiet"])
    assert e.value.code in (0, None)
    marker = tmp_path / "pwned"
    # the one-shot checkpoint a resume reads
    torch.save({"strategy": Payload(marker), "elapsed": 0.0}, run / "checkpoint.pt")
    (run / "best.json").unlink(missing_ok=True)
    import sqlite3
    con = sqlite3.connect(run / "study.db")
    con.execute("DELETE FROM trials")  # so the resume has to reload the search state
    con.commit()
    con.close()
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(["search", "--resume", str(run), "--quiet"])
    err = capsys.readouterr().err
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]  # after the run's header line
    assert e.value.code == 2 and "Traceback" not in err and len(errors) == 1
    assert "cannot be loaded safely (it would call" in errors[0] and "weights_only" not in errors[0]
    assert not marker.exists()
    # the weights `export` and `archsearch.load(...).model()` read
    src = tmp_path / "src"
    with pytest.raises(SystemExit):
        main(["search", "--space", "macro", "--space-opt", "layers=2", "--strategy", "random", "--trials", "1",
              "--epochs", "1", "--no-reference", "--out", str(src), "--quiet"])
    torch.save({"state_dict": Payload(marker)}, src / "best.pt")
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(["export", str(src), "--format", "torchscript", "--output", str(tmp_path / "m.pt")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(err.strip().splitlines()) == 1, err
    assert not marker.exists()
