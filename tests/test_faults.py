"""Fault injection, the fast variant of benchmarks/fault_injection.py (issue 19): SIGKILL a search's driver at
seeded instants while it writes, resume it, and check the invariants — every finished trial kept unchanged,
nothing trained twice, the budget exact, the resumed run equal to an uninterrupted one. The benchmark runs 50 kills
per family; here a few, on the tabular evaluator and tiny data."""
from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path

import pytest

_path = Path(__file__).resolve().parents[1] / "benchmarks" / "fault_injection.py"
_spec = importlib.util.spec_from_file_location("fault_injection", _path)
faults = importlib.util.module_from_spec(_spec)
sys.modules["fault_injection"] = faults
_spec.loader.exec_module(faults)


def small(name: str, trials: int) -> "faults.Family":
    """A family with a smaller trial budget (the same commands otherwise)."""
    fam = faults.FAMILIES[name]

    def swap(argv: list[str]) -> list[str]:
        i = argv.index("--trials")
        return [*argv[:i + 1], str(trials), *argv[i + 2:]]
    start = fam.start
    return dataclasses.replace(fam, start=lambda w, r: swap(start(w, r)), budget={**fam.budget, "trials": trials})


@pytest.mark.timeout(240)
@pytest.mark.parametrize("family, trials, instants", [("blackbox", 250, (0.7,)), ("multifidelity", 4, ())])
def test_a_killed_search_resumes_with_nothing_lost_nothing_redone(tmp_path, family, trials, instants):
    """Kills at seeded instants of the search's working part (its start-up holds nothing), and one kill timed by
    progress (the moment the database holds finished trials), so the check never proves nothing because the
    search ended first or had not begun."""
    fam = small(family, trials)
    fam.prepare(tmp_path)
    reference, wall, began = faults.uninterrupted(fam, tmp_path)
    rows = [faults.one_kill(fam, tmp_path, k, began + u * (wall - began), reference) for k, u in enumerate(instants)]
    rows.append(faults.one_kill(fam, tmp_path, len(rows), 0.0, reference,
                                when=lambda run: faults.finished_trials(run) >= max(1, trials // 3)))
    assert [r["violations"] for r in rows] == [[]] * len(rows)
    assert rows[-1]["killed"] == "driver" and rows[-1]["finished_before"] >= max(1, trials // 3)
    assert rows[-1]["finished_before"] < trials  # it landed mid-search


def _snap(trials: dict) -> dict:
    return {"trials": trials, "rungs": {}, "curves": {}, "epochs": {}}


def test_the_checks_see_a_lost_a_changed_and_a_redone_trial(tmp_path):
    """The invariants can fail: a harness whose checks always pass would prove nothing."""
    fam = dataclasses.replace(faults.FAMILIES["blackbox"], budget={"trials": 2})
    t = {"arch": "a", "status": "ok", "value": 1.0, "fidelity": None, "finished": 1.0, "metrics": {"v": 1.0}}
    before = _snap({0: t, 1: {**t, "arch": "b"}})
    trace = tmp_path / "trace"
    assert faults.check(fam, before, before, before, trace, 0, "") == []
    assert any("trial 1 lost" in v for v in faults.check(fam, before, _snap({0: t}), before, trace, 0, ""))
    redone = _snap({0: {**t, "finished": 2.0}, 1: {**t, "arch": "b"}})
    assert any("evaluated again" in v for v in faults.check(fam, before, redone, before, trace, 0, ""))
    other = _snap({0: t, 1: {**t, "arch": "b", "value": 0.5}})
    assert any("differs from the uninterrupted" in v for v in faults.check(fam, _snap({}), other, before, trace, 0, ""))
    trace.write_text('["trial-0.pt", 1, 11]\n["trial-0.pt", 1, 12]\n')
    assert any("trained again" in v for v in faults.check(fam, before, before, before, trace, 0, ""))
    assert "resume exited 1" in faults.check(fam, before, before, before, trace, 1, "boom")[0]
