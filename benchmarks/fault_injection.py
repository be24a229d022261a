"""Fault injection: SIGKILL a search's driver (or one of its workers) at seeded random instants, resume it, and
check the invariants a user relies on (issue 19).

Families (each small enough to run many times on 2 cores):

* ``blackbox``      regularized evolution on the NB201 table (``--evaluator tabular``);
* ``multifidelity`` ASHA over random proposals, real training of tiny macro networks (checkpoints per epoch);
* ``oneshot``       DARTS on a tiny NB201 supernet, then the derived cell's training;
* ``dataparallel``  the same DARTS search data-parallel over 2 local processes (``--workers 2``);
* ``train``         ``archsearch train`` of a found architecture (checkpoint per epoch);
* ``worker``        a black-box search with 2 local worker processes; one *worker* is killed, not the driver.

For each kill: start the command, kill it at an instant drawn uniformly (seeded) from (0.1, 0.95) of the
uninterrupted run's working part (from when it began writing its run folder to its end), snapshot what is on disk, run ``--resume`` (or the same command, when the kill landed
before the run existed) to the end, and compare with an uninterrupted run of the same seed:

* kept: every trial, rung, learning-curve epoch, one-shot epoch or training epoch finished before the kill is in
  the final run unchanged (its finish time included: it was not redone);
* not trained twice: no checkpointed training epoch is trained again (a trace of every checkpoint written, taken
  by the driver) and no finished one-shot epoch is re-run;
* budget: the run ends with exactly its budget (trials, epochs);
* same result: the resumed run's trials (architectures, values, rungs, curves) or weights equal the uninterrupted
  run's (deterministic on one CPU; not required of ``worker``, whose trial order depends on timing).

    python benchmarks/fault_injection.py --kills 50 --json faults.json        # every family
    python benchmarks/fault_injection.py --families blackbox train --kills 5  # a quick look

``tests/test_faults.py`` runs a few seeded kills per family through the same code.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve()
VOLATILE = ("seconds", "time", "_ms", "started", "elapsed", "wall")  # metric names that measure time
TINY_NB201 = ["--space", "nb201", "--space-opt", "channels=4", "--space-opt", "cells_per_stage=1"]
TINY_MACRO = ["--space", "macro", "--space-opt", "layers=2"]


# ------------------------------------------------------------------------------------------------- the driver

def driver(trace: str, argv: list[str]) -> None:
    """Run the CLI with every training checkpoint write traced (one line per checkpointed epoch)."""
    import archsearch.evaluators.training as training
    original = training._save

    def traced(state: dict, path: str) -> None:
        original(state, path)
        with open(trace, "a") as f:
            f.write(json.dumps([Path(path).name, int(state.get("epoch", -1)), os.getpid()]) + "\n")
            f.flush()
            os.fsync(f.fileno())
    training._save = traced
    from archsearch.cli import main
    main(argv)


def command(argv: list[str], trace: Path) -> list[str]:
    return [sys.executable, str(HERE), "--driver", "--trace", str(trace), "--", *argv]


# ------------------------------------------------------------------------------------------------- snapshots

def _det(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if not any(t in k for t in VOLATILE)}


def snapshot(run: Path) -> dict[str, Any]:
    """What a run directory holds that must survive: finished trials, rungs, curves, one-shot epochs (or {})."""
    db = run / "study.db"
    if not db.is_file():
        return {}
    try:
        con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        trials = {n: {"arch": a, "status": s, "value": v, "fidelity": f, "finished": fin,
                      "metrics": _det(json.loads(m))}
                  for n, a, s, v, f, fin, m in con.execute(
                      "SELECT number, arch, status, value, fidelity, finished, metrics FROM trials "
                      "WHERE status != 'running'")}
        rungs = {f"{t}@{f:g}": v for t, f, v in con.execute("SELECT trial, fidelity, value FROM rungs")}
        curves = {f"{t}@{e}": _det(json.loads(m)) for t, e, m in con.execute("SELECT trial, epoch, metrics FROM curves")}
        epochs = {e: {"arch": a, "alphas": al, "finished": fin, "metrics": _det(json.loads(m))}
                  for e, a, al, fin, m in con.execute("SELECT epoch, arch, alphas, finished, metrics FROM epochs")}
        con.close()
    except sqlite3.DatabaseError as e:
        return {"error": str(e)}
    return {"trials": trials, "rungs": rungs, "curves": curves, "epochs": epochs}


def training_snapshot(out: Path) -> dict[str, Any]:
    """A training folder: its finished epochs (metrics.csv rows) and, when done, the weights' checksum."""
    snap: dict[str, Any] = {"rows": []}
    csv = out / "metrics.csv"
    if csv.is_file():
        lines = csv.read_text().splitlines()
        snap["rows"] = [ln for ln in lines[1:] if ln.strip()]
    model = out / "model.pt"
    if model.is_file() and (out / "result.json").is_file():
        import torch
        sd = torch.load(model, weights_only=True, map_location="cpu")
        sd = sd.get("state_dict", sd) if isinstance(sd, dict) else sd
        snap["weights"] = sum(float(v.double().abs().sum()) for v in sd.values() if hasattr(v, "double"))
    return snap


# ------------------------------------------------------------------------------------------------- families

@dataclass
class Family:
    name: str
    start: Callable[[Path, Path], list[str]]  # (workdir, run) -> CLI args
    resume: Callable[[Path, Path], list[str]]
    budget: dict[str, int]
    deterministic: bool = True
    kill_worker: bool = False
    snap: Callable[[Path], dict] = snapshot
    prepare: Callable[[Path], None] = lambda work: None
    notes: list[str] = field(default_factory=list)


def _tiny_npz(work: Path) -> Path:
    path = work / "tiny.npz"
    if not path.exists():
        import numpy as np
        from sklearn.datasets import load_digits
        d = load_digits()
        x = (d.images[:240] / 16.0).astype("float32")[:, None]
        np.savez(path, x=x, y=d.target[:240])
    return path


def _train_source(work: Path) -> None:
    """A finished tiny run whose best architecture the ``train`` family trains."""
    src = work / "source"
    if not (src / "best.json").is_file():
        subprocess.run([sys.executable, "-m", "archsearch.cli", "search", *TINY_MACRO, "--trials", "1", "--epochs",
                        "1", "--data", str(_tiny_npz(work)), "--no-reference", "--quiet", "--out", str(src)],
                       check=True, env=_env(), stdout=subprocess.DEVNULL)


FAMILIES: dict[str, Family] = {
    "blackbox": Family(
        "blackbox",
        lambda w, r: ["search", "--space", "nb201", "--evaluator", "tabular", "--strategy", "evolution",
                      "--trials", "2000", "--seed", "7", "--no-reference", "--quiet", "--out", str(r)],
        lambda w, r: ["search", "--resume", str(r), "--quiet"], {"trials": 2000}),
    "multifidelity": Family(
        "multifidelity",
        lambda w, r: ["search", *TINY_MACRO, "--strategy", "random", "--scheduler", "asha", "--epochs", "9",
                      "--min-epochs", "1", "--eta", "3", "--trials", "6", "--data", str(_tiny_npz(w)), "--seed", "1",
                      "--threads", "1", "--no-reference", "--quiet", "--out", str(r)],
        lambda w, r: ["search", "--resume", str(r), "--quiet"], {"trials": 6}),
    "oneshot": Family(
        "oneshot",
        lambda w, r: ["search", *TINY_NB201, "--strategy", "darts", "--epochs", "4", "--train-epochs", "2",
                      "--data", str(_tiny_npz(w)), "--seed", "2", "--threads", "1", "--quiet", "--out", str(r)],
        lambda w, r: ["search", "--resume", str(r), "--quiet"], {"epochs": 4, "trials": 1}),
    "dataparallel": Family(
        "dataparallel",
        lambda w, r: ["search", *TINY_NB201, "--strategy", "darts", "--epochs", "3", "--train-epochs", "1",
                      "--workers", "2", "--data", str(_tiny_npz(w)), "--seed", "2", "--quiet", "--out", str(r)],
        lambda w, r: ["search", "--resume", str(r), "--quiet"], {"epochs": 3, "trials": 1}),
    "train": Family(
        "train",
        lambda w, r: ["train", str(w / "source"), "--epochs", "5", "--data", str(_tiny_npz(w)), "--seed", "3",
                      "--out", str(r), "--quiet"],
        lambda w, r: ["train", "--resume", str(r), "--quiet"], {"epochs": 5}, snap=training_snapshot,
        prepare=_train_source),
    "worker": Family(
        "worker",
        lambda w, r: ["search", *TINY_MACRO, "--strategy", "random", "--epochs", "2", "--trials", "6",
                      "--executor", "process", "--workers", "2", "--retries", "1", "--data", str(_tiny_npz(w)), "--seed", "4",
                      "--no-reference", "--quiet", "--out", str(r)],
        lambda w, r: ["search", "--resume", str(r), "--quiet"], {"trials": 6}, deterministic=False,
        kill_worker=True),
}


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}


# ------------------------------------------------------------------------------------------------- checks

def _projection(snap: dict[str, Any], family: Family) -> Any:
    """What must equal the uninterrupted run's (no timestamps)."""
    if family.snap is training_snapshot:
        # metrics.csv: epoch, lr, loss, train %, val %, seconds; the seconds (last column) differ run to run
        return {"rows": [r.rsplit(",", 1)[0] for r in snap.get("rows", [])],
                "weights": snap.get("weights")}
    drop = lambda d: {k: {kk: vv for kk, vv in v.items() if kk != "finished"} for k, v in d.items()}  # noqa: E731
    return {"trials": drop(snap.get("trials", {})), "rungs": snap.get("rungs", {}), "curves": snap.get("curves", {}),
            "epochs": drop(snap.get("epochs", {}))}


def check(family: Family, before: dict, after: dict, reference: dict, trace: Path, rc: int, err: str) -> list[str]:
    bad: list[str] = []
    if rc != 0:
        return [f"resume exited {rc}: {' | '.join(err.strip().splitlines()[-4:])[-600:]}"]
    if "error" in after:
        return [f"damaged run after resume: {after['error']}"]
    if family.snap is training_snapshot:
        rows = after.get("rows", [])
        if rows[:len(before.get("rows", []))] != before.get("rows", []):
            bad.append("a finished training epoch changed or was redone")
        if len(rows) != family.budget["epochs"]:
            bad.append(f"{len(rows)} epochs at the end, budget {family.budget['epochs']}")
    else:
        for key in ("rungs", "curves"):
            for k, v in before.get(key, {}).items():
                if after[key].get(k) != v:
                    bad.append(f"{key} {k} lost or changed")
        for k, v in before.get("epochs", {}).items():
            if after["epochs"].get(k) != v:
                bad.append(f"one-shot epoch {k} lost, changed or re-run")
        for n, t in before.get("trials", {}).items():
            now = after["trials"].get(n)
            if now is None:
                bad.append(f"trial {n} lost")
            elif now["arch"] != t["arch"]:
                bad.append(f"trial {n} changed architecture")
            elif t["fidelity"] == now["fidelity"] and now != t and not family.kill_worker:
                bad.append(f"trial {n} changed or was evaluated again")
        counted = [t for t in after["trials"].values() if t["status"] != "infeasible"]
        if "trials" in family.budget and len(counted) != family.budget["trials"]:
            bad.append(f"{len(counted)} trials at the end, budget {family.budget['trials']}")
        if "epochs" in family.budget and len(after["epochs"]) != family.budget["epochs"]:
            bad.append(f"{len(after['epochs'])} one-shot epochs at the end, budget {family.budget['epochs']}")
        if family.kill_worker and any(t["status"] != "ok" for t in counted):
            bad.append("a trial whose worker was killed was not retried to a result")
    if trace.is_file():
        seen: dict[tuple[str, int], int] = {}
        for line in trace.read_text().splitlines():
            name, epoch, _pid = json.loads(line)
            seen[(name, epoch)] = seen.get((name, epoch), 0) + 1
        twice = sorted(k for k, c in seen.items() if c > 1)
        if twice:
            bad.append(f"{len(twice)} checkpointed epochs trained again (e.g. {twice[0][0]} epoch {twice[0][1]})")
    pa, pr = _projection(after, family), _projection(reference, family)
    if family.deterministic and pa != pr:
        keys = [k for k in pr if pa.get(k) != pr.get(k)]
        k0 = keys[0] if keys else None
        hint = "" if k0 is None else f": {k0} {str(pa.get(k0))[:300]} vs {str(pr.get(k0))[:300]}"
        bad.append(f"the resumed run differs from the uninterrupted run in {', '.join(keys)}{hint}")
    return bad


# ------------------------------------------------------------------------------------------------- running

def _children(pid: int) -> list[int]:
    try:
        kids = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
    return kids + [g for k in kids for g in _children(k)]


def _workers(pid: int) -> list[int]:
    out = []
    for c in _children(pid):
        try:
            cmd = Path(f"/proc/{c}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "spawn_main" in cmd and "resource_tracker" not in cmd:
            out.append(c)
    return out


def _kill_tree(proc: subprocess.Popen) -> None:
    for c in _children(proc.pid):
        try:
            os.kill(c, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _finish(argv: list[str], trace: Path, timeout: float) -> tuple[int, str]:
    p = subprocess.run(command(argv, trace), env=_env(), capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stderr


def _writing(run: Path) -> bool:
    """The command has got past its start-up (imports, data) and begun writing its run or training folder."""
    try:
        return run.is_dir() and any(run.iterdir())
    except OSError:
        return False


def uninterrupted(family: Family, work: Path) -> tuple[dict, float, float]:
    """The uninterrupted run's snapshot, its wall seconds, and the second at which it began writing."""
    run = work / f"{family.name}-reference"
    shutil.rmtree(run, ignore_errors=True)
    trace = work / f"{family.name}-reference.trace"
    t0 = time.perf_counter()
    proc = subprocess.Popen(command(family.start(work, run), trace), env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    began = None
    while proc.poll() is None:
        if began is None and _writing(run):
            began = time.perf_counter() - t0
        time.sleep(0.01)
    err = proc.stderr.read() if proc.stderr else ""
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{family.name}: the uninterrupted run failed ({proc.returncode}): {err.strip()[-500:]}")
    return family.snap(run), wall, wall if began is None else began


def finished_trials(run: Path) -> int:
    """How many trials the run's database holds finished (0 while it cannot be read)."""
    try:
        con = sqlite3.connect(f"{(run / 'study.db').resolve().as_uri()}?mode=ro", uri=True, timeout=1)
        n = con.execute("SELECT COUNT(*) FROM trials WHERE status != 'running'").fetchone()[0]
        con.close()
        return int(n)
    except sqlite3.Error:
        return 0


def one_kill(family: Family, work: Path, k: int, instant: float, reference: dict,
             when: Callable[[Path], bool] | None = None) -> dict[str, Any]:
    """Kill the run ``instant`` seconds after its start, or (``when``) as soon as ``when(run)`` holds."""
    run = work / f"{family.name}-kill{k}"
    trace = work / f"{family.name}-kill{k}.trace"
    shutil.rmtree(run, ignore_errors=True)
    trace.unlink(missing_ok=True)
    proc = subprocess.Popen(command(family.start(work, run), trace), env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    t0 = time.perf_counter()
    killed = None
    while proc.poll() is None and (not when(run) if when is not None else time.perf_counter() - t0 < instant):
        time.sleep(0.005)
    if proc.poll() is None:
        if family.kill_worker:
            # wait (up to the run's end) for a worker to be busy, then kill one
            while proc.poll() is None and not _workers(proc.pid):
                time.sleep(0.01)
            ws = _workers(proc.pid)
            if ws:
                os.kill(random.Random(k).choice(ws), signal.SIGKILL)
                killed = "worker"
        else:
            _kill_tree(proc)
            proc.send_signal(signal.SIGKILL)
            killed = "driver"
    try:
        err, _ = proc.communicate(timeout=900)
    except subprocess.TimeoutExpired:
        proc.kill()
        err, _ = proc.communicate()
    if killed is None:
        return {"kill": k, "instant": instant, "killed": None, "violations": [], "note": "finished before the kill"}
    time.sleep(0.05)
    _kill_tree(proc)  # any orphan of the killed driver (data-parallel ranks) goes with it
    before = family.snap(run)
    if killed == "worker":
        rc, err2 = proc.returncode, err  # the driver goes on by itself
        if rc == 0 and len(before.get("trials", {})) < family.budget.get("trials", 0):
            rc, err2 = _finish(family.resume(work, run), trace, 900)
    elif (run / "study.db").is_file() or (run / "config.json").is_file():
        rc, err2 = _finish(family.resume(work, run), trace, 900)
    else:  # killed before the run existed: start it again, as a user would
        shutil.rmtree(run, ignore_errors=True)
        rc, err2 = _finish(family.start(work, run), trace, 900)
    after = family.snap(run)
    bad = check(family, before, after, reference, trace, rc, err2)
    return {"kill": k, "instant": round(instant, 3), "killed": killed, "violations": bad,
            "finished_before": _finished(before)}


def _finished(snap: dict[str, Any]) -> int:
    """Finished trials, one-shot epochs or training epochs in a snapshot (what a kill could lose)."""
    return sum(1 for t in snap.get("trials", {}).values() if t.get("status") != "running") + \
        len(snap.get("epochs", {})) + len(snap.get("rows", []))


def run_family(name: str | Family, kills: int, seed: int, work: Path, log: Callable[[str], None] = print,
               window: tuple[float, float] = (0.1, 0.95)) -> dict[str, Any]:
    """Kill ``kills`` times at instants drawn uniformly over ``window`` of the uninterrupted run's working part
    (from when it began writing its run to its end; the interpreter's start-up before that holds nothing)."""
    family = FAMILIES[name] if isinstance(name, str) else name
    name = family.name
    family.prepare(work)
    reference, wall, began = uninterrupted(family, work)
    rng = random.Random(f"{seed}-{name}")
    rows = []
    k = 0
    while sum(1 for r in rows if r["killed"]) < kills and k < 3 * kills:
        # a run faster than the uninterrupted one can end before its kill: the next draw then comes from a
        # window shrunk towards the start (the working part of that run was shorter), until `kills` have landed
        late = sum(1 for r in rows if not r["killed"])
        shrink = 0.85 ** late
        instant = began * min(1.0, shrink + 0.1) + rng.uniform(*window) * (wall - began) * shrink
        row = one_kill(family, work, k, instant, reference)
        rows.append(row)
        k += 1
        if row["violations"]:
            log(f"{name} kill {k} at {instant:.2f}s: {'; '.join(row['violations'])}")
        shutil.rmtree(work / f"{name}-kill{k}", ignore_errors=True)
    tried = [r for r in rows if r["killed"]]
    return {"family": name, "uninterrupted_seconds": round(wall, 2), "writing_from_seconds": round(began, 2),
            "kills_tried": len(tried), "after_a_finished_trial": sum(1 for r in tried if r["finished_before"]),
            "landed_after_the_end": len(rows) - len(tried),
            "survived": sum(1 for r in tried if not r["violations"]),
            "violations": sum(len(r["violations"]) for r in tried), "rows": rows}


def main() -> None:
    if "--driver" in sys.argv:
        i = sys.argv.index("--")
        trace = sys.argv[sys.argv.index("--trace") + 1]
        driver(trace, sys.argv[i + 1:])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    ap.add_argument("--kills", type=int, default=50, help="kills per family")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--window", nargs=2, type=float, default=(0.1, 0.95),
                    help="the part of the working run the kill instants are drawn from (fractions)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="faults-"))
    results = []
    print("| family | uninterrupted run s (writing from) | kills tried | of them after ≥1 finished trial/epoch "
          "| kills survived | invariant violations | kills after the end |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in args.families:
        r = run_family(name, args.kills, args.seed, work, log=lambda m: print(m, file=sys.stderr, flush=True),
                       window=tuple(args.window))
        results.append(r)
        print(f"| {name} | {r['uninterrupted_seconds']:.1f} ({r['writing_from_seconds']:.1f}) | {r['kills_tried']} "
              f"| {r['after_a_finished_trial']} | {r['survived']} | {r['violations']} | {r['landed_after_the_end']} |",
              flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
