"""One front door (issue 23): every option of ``archsearch search`` reaches the run it builds or is refused in one
line, for each strategy kind; the CLI and the API build the same run from the same arguments."""
from __future__ import annotations

import pytest
import typer

import archsearch
from archsearch.cli import app, main
from archsearch.oneshot_study import OneShotStudy
from archsearch.storage import RunStore
from archsearch.study import Study

BASES = {"black-box": ["--space", "nb201", "--strategy", "random", "--trials", "2", "--epochs", "1"],
         "one-shot": ["--space", "nb201", "--strategy", "darts", "--epochs", "1"]}
#: a value other than the default for every option (a new option without one here fails the test)
VALUES = {
    "--space": ["macro"], "--strategy": ["evolution"], "--trials": ["3"], "--seconds": ["50"], "--epochs": ["2"],
    "--train-epochs": ["3"], "--seed": ["1"], "--data": ["digits"], "--evaluator": ["weight-sharing"],
    "--table": ["t.csv"], "--metrics-table": ["m.csv"], "--hardware": ["pixel3"], "--objective": ["min:params"],
    "--constraint": ["params<=1M"], "--reference-point": ["70,20"], "--latency-device": ["cpu"],
    "--latency-threads": ["2"], "--latency-clock": ["cpu"], "--latency-table": ["lt.json"], "--device": ["cpu"],
    "--space-opt": ["channels=8"], "--strategy-opt": ["population=3"], "--executor": ["process"],
    "--workers": ["2"], "--threads": ["1"], "--address": ["auto"], "--retries": ["1"], "--trial-timeout": ["30"],
    "--scheduler": ["asha"], "--min-epochs": ["1"], "--eta": ["2"], "--reference": ["--no-reference"],
    "--warm-start": ["--no-warm-start"],
}
NOT_RUN_OPTIONS = {"--out", "--resume", "--quiet", "--dashboard"}  # where the run lives, and what the screen shows


def _options() -> list[str]:
    cmd = typer.main.get_command(app).commands["search"]
    return sorted(p.opts[0] for p in cmd.params if p.opts and p.opts[0].startswith("--"))


@pytest.fixture
def no_run(monkeypatch):
    """Build the run; train nothing."""
    monkeypatch.setattr("archsearch.cli.search._run_with_progress", lambda study, done0, quiet: None)
    monkeypatch.setattr("archsearch.cli.search.print_best", lambda summary, space: None)
    monkeypatch.setattr("archsearch.cli.oneshot.search_oneshot", lambda study, resumed=False, quiet=False: None)


def _config(run_dir):
    store = RunStore(run_dir)
    try:
        cfg = dict(store.get_meta("config"))
    finally:
        store.close()
    cfg.pop("created")
    return cfg


def _cli(capsys, tmp_path, name, args):
    out = tmp_path / name
    with pytest.raises(SystemExit) as e:
        main(["search", *args, "--out", str(out), "--quiet"])
    return e.value.code, capsys.readouterr().err.strip().splitlines(), out


def test_every_search_option_has_a_value_here():
    assert set(_options()) - NOT_RUN_OPTIONS == set(VALUES)


@pytest.mark.parametrize("kind", sorted(BASES))
def test_every_option_reaches_the_run_or_is_refused_in_one_line(kind, tmp_path, capsys, no_run):
    code, _, base_dir = _cli(capsys, tmp_path, "base", BASES[kind])
    assert code == 0
    base = _config(base_dir)
    silently_dropped = []
    for flag, values in VALUES.items():
        args = list(BASES[kind])
        if flag in args:  # replace the base's value
            i = args.index(flag)
            del args[i:i + 2]
        args += values if values[0].startswith("--") else [flag, *values]
        code, err, run_dir = _cli(capsys, tmp_path, flag.strip("-"), args)
        if code == 0:
            if _config(run_dir) == base:
                silently_dropped.append(flag)
        else:
            assert code == 2 and len(err) == 1 and err[0].startswith("error: "), (flag, err)
    assert not silently_dropped, f"{kind}: {silently_dropped} changed nothing in the run and were not refused"


@pytest.mark.parametrize("cli_args, api_args", [
    (["--space", "nb201", "--strategy", "evolution", "--evaluator", "tabular", "--trials", "4", "--seed", "3",
      "--hardware", "pixel3", "--constraint", "latency_ms<=10", "--strategy-opt", "population=3"],
     dict(space="nb201", strategy="evolution", evaluator="tabular", trials=4, seed=3, hardware="pixel3", constraints=["latency_ms<=10"],
          strategy_options={"population": 3})),
    (["--space", "macro", "--space-opt", "layers=3", "--strategy", "bo"],  # the default budget
     dict(space="macro", space_config={"layers": 3}, strategy="bo", executor="auto")),  # (the CLI's default)
    (["--space", "nb201", "--strategy", "darts", "--epochs", "2", "--train-epochs", "3", "--seconds", "60"],
     dict(space="nb201", strategy="darts", epochs=2, train_epochs=3, seconds=60)),
])
def test_the_cli_and_the_api_build_the_same_run(cli_args, api_args, tmp_path, capsys, no_run, monkeypatch):
    code, err, cli_dir = _cli(capsys, tmp_path, "cli", cli_args)
    assert code == 0, err
    monkeypatch.setattr(Study, "run", lambda self, on_trial=None: None)
    monkeypatch.setattr(OneShotStudy, "run", lambda self, **kw: None)
    monkeypatch.setattr("archsearch.api.load", lambda run_dir: run_dir)
    api_dir = archsearch.search(**api_args, out=tmp_path / "api")
    assert _config(api_dir) == _config(cli_dir)


def test_the_api_refuses_what_the_run_would_not_use(tmp_path):
    from archsearch.errors import UserError
    with pytest.raises(UserError, match="train_epochs would be ignored"):
        archsearch.search("nb201", "random", evaluator="tabular", trials=2, train_epochs=3, out=tmp_path / "a")
    with pytest.raises(TypeError, match="no_such_option"):
        archsearch.search("nb201", "random", no_such_option=1)


def test_benchmark_parts_are_the_runs(tmp_path):
    """The benchmarks build their space, evaluator and objective from the same RunConfig a search does."""
    from archsearch.run_config import RunConfig

    cfg = RunConfig(space="nb201", strategy="random", evaluator="tabular", hardware="pixel3", trials=2,
                    constraints=["latency_ms<=10"], out=str(tmp_path / "run"))
    parts = cfg.components()
    study = cfg.build()
    try:
        assert study.spec.options == parts.evaluator_options
        assert study.objective.config() == parts.objective.config()
        assert parts.evaluator.config() == study.spec.build().config()
    finally:
        study.release()
    from archsearch.errors import UserError
    with pytest.raises(UserError, match="would be ignored"):
        RunConfig(space="nb201", evaluator="tabular", data="digits").components()


@pytest.mark.parametrize("given, cores, expected", [
    (dict(executor="auto"), 2, ("process", 2, 1)),  # the CLI's default, trained trials on 2 cores
    (dict(executor="auto"), 8, ("process", 8, 1)),
    (dict(executor="auto", trials=3), 8, ("process", 4, 1)),  # no more workers than trials and the reference
    (dict(executor="auto", trials=1, reference=False), 2, ("inline", None, None)),
    (dict(executor="auto"), 1, ("inline", None, None)),
    (dict(executor="auto", threads=2), 2, ("inline", None, 2)),  # a thread count alone: inline, as asked
    (dict(executor="auto", workers=3), 2, ("process", 3, None)),
    (dict(executor="auto", evaluator="tabular"), 2, ("inline", None, None)),  # not trained: nothing to share out
    (dict(executor="auto", latency_device="cpu"), 2, ("inline", None, None)),  # measured latency: alone
    (dict(executor="auto", device="cuda"), 2, ("inline", None, None)),
    (dict(), 2, ("inline", None, None)),  # the API's default (spawned workers re-import the caller's script)
    (dict(executor="process"), 2, ("process", None, None)),
])
def test_where_trials_run_by_default(given, cores, expected, monkeypatch):
    from archsearch.run_config import RunConfig
    monkeypatch.setattr("os.cpu_count", lambda: cores)
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    given = dict(given)
    trials = given.pop("trials", 30)
    got = RunConfig(**given)._execution(trials)
    assert (got["executor"], got["workers"], got["threads"]) == expected


def test_the_cli_default_search_trains_in_parallel_and_tells_in_ask_order(tmp_path, capsys, no_run, monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    code, err, run_dir = _cli(capsys, tmp_path, "d", ["--trials", "4"])
    assert code == 0, err
    ex = _config(run_dir)["executor"]
    assert (ex["name"], ex["workers"], ex["threads"], ex["tell"]) == ("process", 2, 1, "ask-order")


@pytest.mark.parametrize("strategy", ["random", "darts"])  # black-box and one-shot (it ran, ignoring the name)
def test_an_unknown_executor_lists_auto_among_the_choices(strategy, tmp_path, capsys, no_run):
    from archsearch.executors import EXECUTORS
    code, err, _ = _cli(capsys, tmp_path, "e", ["--space", "nb201", "--strategy", strategy, "--executor", "thread"])
    registered = ", ".join(EXECUTORS.names())  # inline, process, ray (and any a test registered)
    assert code == 2 and err == [f"error: unknown executor 'thread'; choose from: auto, {registered}"], err
    assert {"inline", "process", "ray"} <= set(EXECUTORS.names())
