"""A seconds budget timed as a user times it (issue 18, "budget kept"): ``archsearch search --seconds S`` for each
strategy family, run as the console command and timed from outside the process — from just before it is started to
the moment the process exits (and, separately, to the moment its output closes: worker processes that inherit it
may outlive the driver by a moment). Quiet, and beside a second process keeping both cores busy (a 2-thread matmul
loop, benchmarks/trial_parallelism.background_load). Target: within S + 5%.

    python benchmarks/budget_wall.py --seconds 120 --loads idle busy --data digits28.npz --json budget_wall.json
"""
from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trial_parallelism import background_load  # noqa: E402

FAMILIES = {
    "black-box (default: macro, bo, pool)": [],
    "scheduled (asha, bo)": ["--scheduler", "asha", "--epochs", "9"],
    "one-shot (darts, cell)": ["--space", "cell", "--strategy", "darts", "--epochs", "50", "--train-epochs", "1"],
    "data-parallel one-shot (darts, 2 workers)": ["--space", "cell", "--strategy", "darts", "--epochs", "50",
                                                  "--train-epochs", "1", "--workers", "2"],
}


def one(args_: list[str], seconds: float, out: Path, data: str | None = None) -> dict:
    cmd = [sys.executable, "-m", "archsearch.cli", "search", *args_, "--seconds", f"{seconds:g}", "--quiet",
           "--out", str(out), *(["--data", data] if data else [])]
    t0 = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ended: dict[str, float] = {}
    threading.Thread(target=lambda: (proc.wait(), ended.setdefault("exit", time.time() - t0)), daemon=True).start()
    lines, search_done = [], None
    for line in proc.stdout:  # one-shot: the line that ends the search and states the final training separately
        lines.append(line)
        if search_done is None and "search done within" in line:
            search_done = time.time() - t0
    text = "".join(lines)
    closed = time.time() - t0
    proc.wait()
    while "exit" not in ended:
        time.sleep(0.01)
    row = {"exit_s": round(ended["exit"], 2), "output_closed_s": round(closed, 2), "rc": proc.returncode,
           "search_done_s": None if search_done is None else round(search_done, 2)}
    try:
        conn = sqlite3.connect(f"{(out / 'study.db').resolve().as_uri()}?mode=ro", uri=True)
        n, first = conn.execute("SELECT COUNT(*), MIN(started) FROM trials").fetchone()
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        conn.close()
        row.update(trials=n, first_trial_s=None if first is None else round(first - t0, 2),
                   elapsed_meta=round(float(json.loads(meta.get("elapsed_seconds", "0"))), 2))
    except sqlite3.Error as e:  # pragma: no cover - reported
        row["db_error"] = str(e)
    if proc.returncode != 0:
        row["output_tail"] = text[-400:]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--loads", nargs="+", default=["idle", "busy"], choices=["idle", "busy"])
    ap.add_argument("--families", nargs="+", default=list(FAMILIES), help="a subset of: " + "; ".join(FAMILIES))
    ap.add_argument("--data", help="an .npz dataset (default: the embedded digits)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for load in args.loads:
            with background_load(load == "busy"):
                for k, fam in enumerate(args.families):
                    row = {"family": fam, "load": load, **one(FAMILIES[fam], args.seconds, Path(tmp) / f"{load}-{k}",
                                                                     args.data)}
                    # one-shot: the search ends at the line stating the derived architecture's training, which
                    # is not in the budget (issue 18: "inside S or stated separately on the screen")
                    row["search_end_s"] = row["search_done_s"] or row["exit_s"]
                    row["within_5pct"] = row["search_end_s"] <= 1.05 * args.seconds
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    print("\n| family | load | search ends s | process exits s | output closed s | trials | within S + 5% |")
    print("|---|---|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['family']} | {r['load']} | {r['search_end_s']} | {r['exit_s']} | {r['output_closed_s']} | "
              f"{r.get('trials')} | {'yes' if r['within_5pct'] else 'no'} |")
    if args.json:
        args.json.write_text(json.dumps({"seconds": args.seconds, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
