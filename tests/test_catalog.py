"""One way to find, describe and configure strategies of both kinds (issue 23): ``archsearch strategies`` lists
what each declares, and ``--strategy-opt`` is checked the same way for black-box and one-shot strategies."""
from __future__ import annotations

import pytest

from archsearch.cli import main
from archsearch.errors import UserError
from archsearch.registry import UnknownNameError
from archsearch.spaces import get_space
from archsearch.strategies import STRATEGIES, make_strategy
from archsearch.strategies.catalog import (BLACK_BOX, ONE_SHOT, check_options, describe, find_strategy,
                                           strategy_names)
from archsearch.strategies.oneshot import ONESHOT

SPACE_FOR = {"hierarchical-evolution": "hierarchical"}


def test_names_of_both_kinds():
    names = strategy_names()
    assert names[BLACK_BOX] == STRATEGIES.names() and names[ONE_SHOT] == ONESHOT.names()
    assert find_strategy("bo")[0] == BLACK_BOX and find_strategy("darts")[0] == ONE_SHOT
    with pytest.raises(UnknownNameError, match=r"did you mean 'darts'.*black-box: .*bo.*one-shot: .*spos"):
        find_strategy("dartz")


@pytest.mark.parametrize("name", STRATEGIES.names())
def test_listed_black_box_options_are_true(name):
    """Every option listed, given its listed default, is taken by the strategy (the listing is the strategy's)."""
    info = describe(name)
    assert info.summary and info.kind == BLACK_BOX and "single" in info.objectives
    given = {o.name: o.default for o in info.options if o.default is not None}
    if name == "bo-parego":
        given.pop("acquisition", None)  # the one option bo-parego fixes
    check_options(name, given)
    make_strategy(name, get_space(SPACE_FOR.get(name, "nb201")), seed=0, **given)


@pytest.mark.parametrize("name", ONESHOT.names())
def test_listed_one_shot_options_are_true(name):
    info = describe(name)
    assert info.kind == ONE_SHOT and info.summary and not info.open_options
    fields = {o.name: o.default for o in info.options}
    assert ONESHOT.get(name).Options(**fields) == ONESHOT.get(name).Options()


@pytest.mark.parametrize("name, options, message", [
    ("evolution", {"populaton": 3}, "black-box strategy 'evolution' has no option 'populaton' (did you mean "
                                    "'population'?); its options: population, sample_size"),
    ("darts", {"w_lrr": 0.1}, "one-shot strategy 'darts' has no option 'w_lrr' (did you mean 'w_lr'?)"),
    ("random", {"x": 1}, "its options: none"),
    ("evolution", {"population": "many"}, "population='many': evolution's population is a whole number"),
    ("darts", {"w_lr": "fast"}, "w_lr='fast': darts's w_lr is a number"),
    ("bo", {"trust_region": 1}, "trust_region is true or false"),
])
def test_options_refused_alike(name, options, message):
    with pytest.raises(UserError) as e:
        check_options(name, options)
    assert message in str(e.value)


def test_open_options_pass_on():
    check_options("optuna-tpe", {"n_startup_trials": 5})  # TPESampler's: Optuna refuses what it does not know
    assert describe("optuna-tpe").open_options and not describe("random").open_options


def _cli(capsys, *args):
    try:
        main(list(args))
        code = 0
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_lists_and_refuses(capsys):
    code, out, _ = _cli(capsys, "strategies")
    assert code == 0
    for n in STRATEGIES.names() + ONESHOT.names():
        assert n in out
    code, out, _ = _cli(capsys, "strategies", "bo-ehvi")
    assert code == 0 and "reference_point" in out and "ref_point" in out and "acquisition" in out
    code, _, err = _cli(capsys, "strategies", "nope")
    assert code == 2 and "unknown strategy 'nope'" in err
    for strategy, opt in (("evolution", "populaton=3"), ("darts", "nope=1")):
        code, _, err = _cli(capsys, "search", "--space", "nb201", "--strategy", strategy, "--strategy-opt", opt,
                            "--quiet")
        assert code == 2 and "--strategy-opt: " in err and "its options:" in err, err
        assert len(err.strip().splitlines()) == 1
