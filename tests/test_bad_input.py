"""Bad input, systematically (issue 19): property-based tests (Hypothesis) over data files and over the CLI's
options. Every bad case is one line on stderr and exit code 2; a good case loads into consistent, finite tensors;
nothing raises a traceback; nothing in a file is executed."""
from __future__ import annotations

import io
import json
import pickle
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from archsearch.cli import main  # noqa: E402
from conftest import run_cli  # noqa: E402
from archsearch.datasets import load_data  # noqa: E402
from archsearch.errors import UserError  # noqa: E402

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def assert_one_line_error(code: int, err: str) -> None:
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err


# ---------------------------------------------------------------------------------------------------- data files

KEYS = ["x", "y", "x_train", "y_train", "x_val", "y_val", "x_test", "y_test", "junk"]
DTYPES = ["float32", "float64", "uint8", "int64", "int8", "bool", "<U3", "complex64"]


@st.composite
def arrays(draw):
    rank = draw(st.integers(0, 5))
    n = draw(st.sampled_from([0, 1, 2, 9, 10, 12, 24]))
    rest = [draw(st.integers(1, 5)) for _ in range(max(0, rank - 1))]
    shape = tuple([n] + rest)[:rank]
    dtype = draw(st.sampled_from(DTYPES))
    size = int(np.prod(shape)) if shape else 1
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if dtype == "<U3":
        a = np.array(["abc"] * size, dtype=dtype).reshape(shape)
    else:
        lo, hi = draw(st.sampled_from([(0, 3), (-2, 3), (0, 1000)]))
        a = rng.integers(lo, hi, size=size).reshape(shape).astype(dtype)
    if a.dtype.kind == "f" and a.size and draw(st.booleans()):
        a.flat[draw(st.integers(0, a.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return a


@st.composite
def npz_contents(draw):
    keys = draw(st.lists(st.sampled_from(KEYS), min_size=0, max_size=len(KEYS), unique=True))
    return {k: draw(arrays()) for k in keys}


def good_npz(n=40, labels=3):
    rng = np.random.default_rng(0)
    return {"x": rng.random((n, 1, 6, 6)).astype("float32"), "y": np.arange(n) % labels}


def check_loaded(data) -> None:
    """A file that loads gives what training needs: matching lengths, finite inputs, labels 0..K-1."""
    import torch
    k = data.num_classes
    for x, y in ((data.x_train, data.y_train), (data.x_val, data.y_val), (data.x_test, data.y_test)):
        assert len(x) == len(y) and x.ndim == 4 and bool(torch.isfinite(x).all())
        assert len(y) == 0 or (int(y.min()) >= 0 and int(y.max()) < k)
    assert len(data.x_train) > 0 and k >= 2


@SETTINGS
@given(contents=npz_contents())
def test_any_npz_loads_consistently_or_is_one_user_error(tmp_path, contents):
    path = tmp_path / "d.npz"
    np.savez(path, **contents)
    try:
        data = load_data(str(path))
    except UserError as e:
        assert "\n" not in str(e) and str(path) in str(e)
        return
    check_loaded(data)


@pytest.mark.parametrize("case", ["missing keys", "nan", "inf", "labels out of range", "negative labels",
                                  "mismatched lengths", "no samples", "one sample", "wrong rank", "one class",
                                  "strings", "float labels", "split shapes differ", "not a zip", "empty file"])
def test_each_bad_npz_is_one_line_and_exit_2_from_the_cli(tmp_path, capsys, case):
    d = good_npz()
    if case == "missing keys":
        d = {"x": d["x"]}
    elif case in ("nan", "inf"):
        d["x"][3, 0, 2, 2] = np.nan if case == "nan" else np.inf
    elif case == "labels out of range":  # a test label the training split never has
        yt = d["y"].copy()
        yt[5] = 7
        d = {"x_train": d["x"], "y_train": d["y"], "x_test": d["x"], "y_test": yt}
    elif case == "negative labels":
        d["y"] = d["y"] - 1
    elif case == "mismatched lengths":
        d["y"] = d["y"][:-3]
    elif case == "no samples":
        d = {"x": d["x"][:0], "y": d["y"][:0]}
    elif case == "one sample":
        d = {"x": d["x"][:1], "y": d["y"][:1]}
    elif case == "wrong rank":
        d["x"] = d["x"].reshape(40, -1)[:, :, None, None, None]
    elif case == "one class":
        d["y"] = np.zeros_like(d["y"])
    elif case == "strings":
        d["x"] = np.array(["a"] * 40)
    elif case == "float labels":
        d["y"] = d["y"].astype("float32") + 0.5
    elif case == "split shapes differ":
        d = {"x_train": d["x"], "y_train": d["y"], "x_test": d["x"][:, :, :4, :4], "y_test": d["y"]}
    path = tmp_path / "bad.npz"
    if case == "not a zip":
        path.write_bytes(b"this is not a zip archive at all")
    elif case == "empty file":
        path.write_bytes(b"")
    else:
        np.savez(path, **d)
    code, _, err = run_cli(capsys, "search", "--data", path, "--trials", "1", "--epochs", "1", "--no-reference",
                           "--out", tmp_path / "run", "--quiet")
    assert_one_line_error(code, err)
    assert not (tmp_path / "run" / "best.json").exists()


class Payload:
    """Unpickling this creates a file: the proof that a loader executed code from a data file."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "pwned"))


def test_a_pickled_object_array_in_a_data_file_never_runs(tmp_path, capsys):
    marker = tmp_path / "pwned"
    obj = np.empty(40, dtype=object)
    obj[:] = [Payload(str(marker))] * 40
    path = tmp_path / "evil.npz"
    np.savez(path, x=obj, y=np.arange(40) % 3)  # savez pickles object arrays
    code, _, err = run_cli(capsys, "search", "--data", path, "--trials", "1", "--epochs", "1", "--no-reference",
                           "--out", tmp_path / "run", "--quiet")
    assert_one_line_error(code, err)
    assert not marker.exists()
    # a raw pickle renamed .npz is refused the same way
    raw = tmp_path / "raw.npz"
    raw.write_bytes(pickle.dumps(Payload(str(marker))))
    code, _, err = run_cli(capsys, "search", "--data", raw, "--trials", "1", "--no-reference", "--quiet",
                           "--out", tmp_path / "run2")
    assert_one_line_error(code, err)
    assert not marker.exists()


@pytest.mark.parametrize("case", ["non-images", "one class", "no test split", "empty"])
def test_bad_image_folders_are_one_line(tmp_path, capsys, case):
    pil = pytest.importorskip("PIL.Image")
    root = tmp_path / "imgs"
    classes = ["a"] if case == "one class" else ["a", "b"]
    for split in (["train"] if case == "no test split" else ["train", "test"]):
        for c in classes:
            (root / split / c).mkdir(parents=True)
            if case == "empty":
                continue
            for i in range(3):
                f = root / split / c / f"{i}.png"
                if case == "non-images" and i == 1:
                    f.write_bytes(b"\x89PNG but not really")
                else:
                    buf = io.BytesIO()
                    pil.new("L", (8, 8), color=40 * i).save(buf, format="PNG")
                    f.write_bytes(buf.getvalue())
    code, _, err = run_cli(capsys, "search", "--data", root, "--trials", "1", "--no-reference", "--quiet",
                           "--out", tmp_path / "run")
    assert_one_line_error(code, err)


@pytest.mark.parametrize("case", ["empty corpus", "missing split", "not utf-8"])
def test_bad_text_corpora_are_one_line(tmp_path, capsys, case):
    root = tmp_path / "corpus"
    root.mkdir()
    for name in ("train.txt", "valid.txt", "test.txt"):
        if case == "missing split" and name == "valid.txt":
            continue
        text = "the cat sat on the mat .\n" * 200
        if case == "empty corpus" and name == "train.txt":
            text = ""
        data = text.encode()
        if case == "not utf-8" and name == "test.txt":
            data = b"\xff\xfe\xfa bad bytes"
        (root / name).write_bytes(data)
    code, _, err = run_cli(capsys, "search", "--space", "rnn", "--data", root, "--trials", "1", "--no-reference",
                           "--quiet", "--out", tmp_path / "run")
    assert_one_line_error(code, err)


# --------------------------------------------------------------------------------------------------- CLI options

NAMES = st.one_of(st.sampled_from(["", "-", "random", "bo", "asha", "macro", "nb201", "x" * 300, "ünï", "1e9",
                                   "../../etc/passwd", "<script>", "nan", "None", "fifo", "hyperband"]),
                  st.text(min_size=0, max_size=12))
NUMBERS = st.one_of(st.sampled_from(["0", "-1", "-0.5", "nan", "inf", "-inf", "1e400", "abc", "", "3.5", "1",
                                     "99999999999999999999"]),
                    st.integers(-5, 5).map(str), st.floats(allow_nan=True, allow_infinity=True).map(str))
OPTIONS = {"--space": NAMES, "--strategy": NAMES, "--evaluator": NAMES, "--scheduler": NAMES, "--trials": NUMBERS,
           "--seconds": NUMBERS, "--epochs": NUMBERS, "--eta": NUMBERS, "--min-epochs": NUMBERS, "--seed": NUMBERS,
           "--workers": NUMBERS, "--threads": NUMBERS, "--retries": NUMBERS, "--trial-timeout": NUMBERS,
           "--objective": NAMES, "--constraint": NAMES, "--executor": NAMES,
           "--space-opt": st.one_of(NAMES, NAMES.map(lambda s: f"channels={s}"), NAMES.map(lambda s: f"{s}=1")),
           "--strategy-opt": st.one_of(NAMES, NAMES.map(lambda s: f"population={s}")),
           "--eval-opt": st.one_of(NAMES, NAMES.map(lambda s: f"table={s}"))}


@st.composite
def fuzzed_search(draw):
    """A working tabular search (fast) with one to three of its options replaced by fuzzed values."""
    chosen = draw(st.lists(st.sampled_from(sorted(OPTIONS)), min_size=1, max_size=3, unique=True))
    opts = {"--space": "nb201", "--evaluator": "tabular", "--strategy": "random", "--trials": "3"}
    for k in chosen:
        opts[k] = draw(OPTIONS[k])
    return opts


@SETTINGS
@given(opts=fuzzed_search())
def test_any_search_options_run_or_fail_in_one_line(tmp_path, capsys, opts):
    n = len(list(tmp_path.iterdir()))
    argv = ["search", "--out", tmp_path / f"run{n}", "--quiet", "--no-reference"]
    for k, v in opts.items():
        argv += [k, v]
    capsys.readouterr()
    try:
        main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    else:  # pragma: no cover - main always exits
        code = 0
    err = capsys.readouterr().err
    assert code in (0, 2), (argv, code, err)
    assert "Traceback" not in err, (argv, err)
    if code == 2:
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), (argv, err)


@SETTINGS
@given(command=st.sampled_from(["show", "report", "train", "export", "pareto"]), path=NAMES)
def test_commands_on_a_missing_or_odd_run_path_fail_in_one_line(tmp_path, capsys, command, path):
    target = tmp_path / "runs" / (path.replace("/", "_").replace("\x00", "") or "empty")
    code, _, err = run_cli(capsys, command, target)
    assert_one_line_error(code, err)


@pytest.mark.parametrize("junk", ["truncated", "garbled", "newer version", "json junk"])
@pytest.mark.parametrize("command", ["show", "report", "train", "export", "search --resume"])
def test_damaged_run_files_are_one_line_for_each_command(tmp_path, capsys, junk, command):
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, "search", "--space", "nb201", "--evaluator", "tabular", "--trials", "3",
                           "--no-reference", "--quiet", "--out", run)
    assert code == 0, err
    db = run / "study.db"
    import sqlite3
    con = sqlite3.connect(db)  # in this process the search's WAL may still hold the data: move it into study.db
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    if junk == "truncated":
        db.write_bytes(db.read_bytes()[:1000])
    elif junk == "garbled":
        raw = bytearray(db.read_bytes())
        raw[100:4000] = bytes(range(256)) * 15 + bytes(60)
        db.write_bytes(bytes(raw))
    elif junk == "newer version":
        con = sqlite3.connect(db)
        con.execute("UPDATE meta SET value = ? WHERE key = 'format'", (json.dumps(99),))
        con.commit()
        con.close()
    else:
        (run / "best.json").write_text("{not json")
        (run / "best.pt").write_bytes(b"junk")
    argv = command.split() + [run] if command.startswith("search") else [command, run]
    if command == "export":
        argv += ["--output", tmp_path / "m.onnx"]
    if command == "train":
        argv += ["--epochs", "1"]
    code, out, err = run_cli(capsys, *argv)
    if junk == "json junk" and command in ("show", "report", "train", "search --resume"):
        assert code in (0, 2), err  # study.db is intact: these recover from it
        assert "Traceback" not in err
        return
    assert_one_line_error(code, err)
    del out
